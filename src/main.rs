use std::process::ExitCode;

fn main() -> ExitCode {
    ci_doctor::app::main()
}
