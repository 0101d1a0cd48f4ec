//! The command line as a newcomer meets it: completions, the manual page, `--help` with its
//! global options and examples, "did you mean" for environments, colours only on a terminal
//! that wants them, and `init` keeping `.dbdeploy/` out of git.

use crate::common::{Run, sqlite_basic};
use crate::dbdeploy_snapshot;

#[test]
fn completions_for_every_shell() {
    let t = sqlite_basic("completions");
    for (shell, marker) in [
        ("bash", "complete -F _dbdeploy"),
        ("zsh", "#compdef dbdeploy"),
        ("fish", "complete -c dbdeploy"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = t.run(&["completions", shell]);
        run.code(0);
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(300)]
        );
        // Every command is completed.
        for command in ["migrate", "status", "rollback", "new", "completions"] {
            assert!(run.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let run = t.run(&["completions", "tcsh"]);
    run.code(2);
}

#[test]
fn bash_completion_loads_in_bash() {
    let t = sqlite_basic("completions_bash");
    let script = t.path().join("dbdeploy.bash");
    std::fs::write(&script, t.run(&["completions", "bash"]).stdout).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && COMP_WORDS=(dbdeploy mig) COMP_CWORD=1 && _dbdeploy dbdeploy mig dbdeploy && echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("migrate"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_page_is_roff_with_every_command() {
    let t = sqlite_basic("man");
    let run = t.run(&["man"]);
    run.code(0);
    assert!(
        run.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &run.stdout[..200]
    );
    assert!(
        run.stdout.contains(".TH dbdeploy 1"),
        "{}",
        &run.stdout[..400]
    );
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(run.stdout.contains(section), "{section}");
    }
    assert!(
        run.stdout.contains("dbdeploy\\-migrate"),
        "subcommands listed"
    );
}

#[test]
fn help_groups_global_options_and_shows_examples() {
    let t = sqlite_basic("help");
    dbdeploy_snapshot!(t, ["migrate", "--help"]).code(0);
    let run = t.run(&["--help"]);
    run.code(0);
    assert!(run.stdout.contains("Global options:"), "{}", run.stdout);
    assert!(run.stdout.contains("Exit codes:"), "{}", run.stdout);
    for command in ["status", "new", "init", "rollback", "completions"] {
        let run = t.run(&[command, "--help"]);
        run.code(0);
        assert!(
            run.stdout.contains("Examples:"),
            "{command}: {}",
            run.stdout
        );
        assert!(run.stdout.contains("Global options:"), "{command}");
    }
}

#[test]
fn unknown_environment_suggests_the_closest() {
    let t = sqlite_basic("did_you_mean");
    let run = t.run(&["status", "stagign"]);
    run.code(2);
    assert!(
        run.stderr.contains("did you mean `staging`?"),
        "{}",
        run.stderr
    );
    let run = t.run(&["status", "xyz"]);
    run.code(2);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
    dbdeploy_snapshot!(t, ["status", "prodcution", "--json"]).code(2);
}

/// Runs with the given colour variables; stdout and stderr are pipes (never terminals).
fn colours(t: &crate::common::TestContext, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = t.cmd(args);
    cmd.env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm-256color");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

#[test]
fn redirected_output_has_no_colour_codes_at_any_verbosity() {
    let t = sqlite_basic("colours");
    for args in [
        &["migrate", "dev", "--dry-run"][..],
        &["migrate", "dev", "--dry-run", "-v"],
        &["migrate", "dev", "--dry-run", "-vv"],
        &["migrate", "dev", "--dry-run", "-vvv"],
        &["status", "nope"],
        &["migrate", "dev", "--dry-run", "--json", "-vv"],
    ] {
        let run = colours(&t, args, &[]);
        assert!(!run.all().contains('\x1b'), "{args:?}: {:?}", run.all());
    }
    // CLICOLOR_FORCE forces them (unless 0); --color never wins over it.
    let run = colours(&t, &["status", "nope"], &[("CLICOLOR_FORCE", "1")]);
    assert!(run.stderr.contains("\x1b[31merror:"), "{:?}", run.stderr);
    let run = colours(&t, &["status", "nope"], &[("CLICOLOR_FORCE", "0")]);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    let run = colours(
        &t,
        &["status", "nope", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
}

/// Runs on a pseudo-terminal (script(1)) with `vars`; what the terminal showed.
fn on_terminal(t: &crate::common::TestContext, args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut line = format!(
        "{} -C '{}'",
        env!("CARGO_BIN_EXE_dbdeploy"),
        t.path().display()
    );
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("DATABASE_URL", &t.url)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(std::process::Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    String::from_utf8_lossy(&cmd.output().expect("script(1)").stdout).into_owned()
}

#[test]
fn colours_on_a_terminal_follow_no_color_and_term() {
    let t = sqlite_basic("colours_tty");
    let with = on_terminal(&t, &["status", "nope"], &[("TERM", "xterm")]);
    assert!(with.contains("\x1b[31merror:"), "{with:?}");
    for vars in [
        &[("TERM", "dumb")][..],
        &[("TERM", "xterm"), ("NO_COLOR", "1")],
    ] {
        let out = on_terminal(&t, &["status", "nope"], vars);
        assert!(
            out.contains("error:") && !out.contains("\x1b[31m"),
            "{vars:?}: {out:?}"
        );
    }
}

#[test]
fn init_ignores_the_state_folder_once() {
    let t = sqlite_basic("init_gitignore");
    std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
    std::fs::write(t.path().join(".gitignore"), "node_modules").unwrap();
    let run = t.run(&["init"]);
    run.code(0);
    assert!(run.stdout.contains(".gitignore"), "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(t.path().join(".gitignore")).unwrap(),
        "node_modules\n# dbdeploy: backups, the audit log and the local database\n.dbdeploy/\n"
    );
    std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
    let run = t.run(&["init", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["gitignore_updated"], false);
    assert_eq!(
        std::fs::read_to_string(t.path().join(".gitignore"))
            .unwrap()
            .matches(".dbdeploy/")
            .count(),
        1
    );
}
