fn main() -> std::process::ExitCode {
    pgo_cli::main()
}
