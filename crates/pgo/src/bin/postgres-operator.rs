fn main() -> std::process::ExitCode {
    pgo_server::main()
}
