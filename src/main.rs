//! The `switchboard` binary; see the library crate for what it does.

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
