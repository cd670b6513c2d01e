fn main() -> std::process::ExitCode {
    mcp_perfcheck::cli::main()
}
