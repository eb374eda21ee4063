//! The `tcpconform` binary: argument parsing and dispatch live in [`tcpconform::cli`].

fn main() -> std::process::ExitCode {
    tcpconform::cli::main()
}
