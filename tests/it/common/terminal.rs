//! Running dbdeploy on a terminal, as a person would: `script` (util-linux) gives the command
//! a pseudo-terminal for stdin and stderr, and the test types answers into it.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Run, TestContext};

/// A dbdeploy run on a pseudo-terminal.
pub struct Terminal {
    child: Child,
}

/// Quotes one word for `sh -c`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

impl TestContext {
    /// Starts dbdeploy with `args` on a terminal; answer its prompts with [`Terminal::type_line`].
    pub fn on_terminal(&self, args: &[&str]) -> Terminal {
        let mut words = vec![
            env!("CARGO_BIN_EXE_dbdeploy").to_owned(),
            "-C".to_owned(),
            self.path().display().to_string(),
        ];
        words.extend(args.iter().map(|a| (*a).to_owned()));
        let line = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
        let child = Command::new("script")
            .args(["-q", "-e", "-f", "-c", &line, "/dev/null"])
            .env("DATABASE_URL", &self.url)
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env_remove("DBDEPLOY_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dbdeploy under script(1)");
        Terminal { child }
    }
}

impl Terminal {
    /// Types `text` and Enter.
    pub fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("terminal input");
        stdin
            .write_all(format!("{text}\r").as_bytes())
            .expect("type into the terminal");
        stdin.flush().expect("flush the terminal");
    }

    /// Waits for the run to end, within `limit`; everything it wrote is in stdout (a terminal
    /// has one stream).
    pub fn wait(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().expect("poll").is_none() {
            assert!(
                Instant::now() < deadline,
                "dbdeploy on the terminal did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(self.child.stdin.take());
        Run::from(self.child.wait_with_output().expect("collect output"))
    }
}
