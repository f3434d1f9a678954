//! Running programs, and installing Debian's packages when they are missing.

use std::process::Command;

/// A failed step, in words for the terminal.
pub type StepResult = Result<(), String>;

/// Prints a step header.
pub fn step(title: &str) {
    println!("\n==> {title}");
}

/// Runs `command`, failing with its description when it cannot start or fails.
///
/// # Errors
/// The command and how it failed.
pub fn run_command(command: &mut Command) -> StepResult {
    let description = format!("{command:?}");
    let status = command
        .status()
        .map_err(|error| format!("could not start {description}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{description} failed ({status})"))
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .is_some_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Installs Debian's `packages` with apt-get when run as root; otherwise fails with `why`
/// and the command to run.
///
/// # Errors
/// Not root, or apt-get failed.
pub fn apt_install(packages: &[&str], why: &str) -> StepResult {
    let list = packages.join(" ");
    if !is_root() {
        return Err(format!(
            "{why}: install them (on Debian: sudo apt-get install {list}) and run again"
        ));
    }
    step(&format!("installing {list} (apt-get install {list})"));
    run_command(Command::new("apt-get").arg("update"))?;
    run_command(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
