// mimalloc: the reference server's calls are allocation-heavy (JSON trees in and out), and
// glibc's malloc/free were a fifth of its CPU per call (scripts/bench-servers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcp_perfcheck::cli::main()
}
