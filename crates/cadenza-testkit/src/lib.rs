//! Test kit: real infrastructure for cadenza's integration tests, started and stopped by the
//! test itself — for now an Apache Kafka broker (KRaft, one node on loopback) run through
//! `scripts/kafka.sh`, the same script behind `make kafka-up`.
//!
//! ```no_run
//! let broker = cadenza_testkit::KafkaBroker::shared().expect("kafka broker");
//! let bootstrap = broker.bootstrap(); // "127.0.0.1:<port>"
//! ```

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// What can go wrong while bringing up test infrastructure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool the broker needs is not installed; the message says how to get it.
    #[error("{tool} not found on PATH: {hint}")]
    Missing {
        /// The missing program.
        tool: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// `scripts/kafka.sh <command>` failed; its output is included.
    #[error("scripts/kafka.sh {command} failed ({status}):\n{output}")]
    Script {
        /// The script's sub-command.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// Creating the data dir or picking a port failed.
    #[error("test kit I/O: {0}")]
    Io(#[from] io::Error),
    /// A previous start of the shared broker failed; its error is repeated here.
    #[error("the shared Kafka broker could not be started earlier: {0}")]
    SharedFailed(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The repository root, so tests of any crate can call the scripts without knowing where they
/// run from: from the running test's `CARGO_MANIFEST_DIR` (every crate sits two levels down),
/// else from this crate's manifest dir at compile time. Run time first: a build cache shared
/// between checkouts may hand this crate over compiled in another one.
pub fn repo_root() -> PathBuf {
    let has_scripts = |p: &Path| p.join("scripts/kafka.sh").is_file();
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(|d| PathBuf::from(d).join("../.."));
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = runtime.filter(|p| has_scripts(p)).unwrap_or(compiled);
    root.canonicalize().unwrap_or(root)
}

/// A single-node Kafka broker on `127.0.0.1`, on free ports, with its own temporary data dir.
///
/// Dropping it stops the broker and removes the data. Brokers also carry a watchdog
/// (`KAFKA_WATCH_PID`) that stops them when the test process exits without dropping them —
/// statics are never dropped, and a killed test binary must not leave a JVM behind.
#[derive(Debug)]
pub struct KafkaBroker {
    port: u16,
    controller_port: u16,
    data: PathBuf,
    _dir: TempDir,
}

impl KafkaBroker {
    /// Install Kafka if needed (once per machine, cached under `$CADENZA_CACHE/kafka`), start
    /// a broker and wait until it serves requests.
    pub fn start() -> Result<KafkaBroker> {
        install()?;
        // Free ports are picked by binding port 0 and releasing it; another process can take
        // one in between, so a start that fails is retried on fresh ports.
        let mut last_err = None;
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("cadenza-kafka-")
                .tempdir()?;
            // Tells the watchdog to delete the data dir along with the broker.
            std::fs::write(dir.path().join(".remove-on-exit"), b"")?;
            let (port, controller_port) = (free_port()?, free_port()?);
            let broker = KafkaBroker {
                port,
                controller_port,
                data: dir.path().to_path_buf(),
                _dir: dir,
            };
            match broker.start_and_wait() {
                Ok(()) => return Ok(broker),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("three attempts ran"))
    }

    /// One broker per test binary, started on first use and stopped by its watchdog when the
    /// process exits. Prefer this in test suites: a broker takes seconds to start.
    pub fn shared() -> Result<&'static KafkaBroker> {
        static SHARED: OnceLock<Result<KafkaBroker, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| KafkaBroker::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::SharedFailed(e.clone()))
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the broker's `server.log` lives (worth printing when a test fails).
    pub fn log_dir(&self) -> PathBuf {
        self.data.join("logs")
    }

    /// SIGKILL the broker (a crash, for fault tests). [`KafkaBroker::restart`] brings it back
    /// with its data.
    pub fn kill(&self) -> Result<()> {
        self.script("kill").map(drop)
    }

    /// Graceful stop (SIGTERM, SIGKILL after a deadline).
    pub fn stop(&self) -> Result<()> {
        self.script("stop").map(drop)
    }

    /// Stop the broker if it runs, start it again on the same ports and data, wait until ready.
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start_and_wait()
    }

    /// Whether the broker process is alive.
    pub fn is_running(&self) -> bool {
        self.script("status").is_ok()
    }

    fn start_and_wait(&self) -> Result<()> {
        self.script("start")?;
        self.script("wait").map(drop)
    }

    fn script(&self, command: &str) -> Result<Output> {
        let port = self.port.to_string();
        let controller = self.controller_port.to_string();
        let data = self.data.to_string_lossy().into_owned();
        let pid = std::process::id().to_string();
        run_script(
            command,
            &[
                ("KAFKA_PORT", port.as_str()),
                ("KAFKA_CONTROLLER_PORT", controller.as_str()),
                ("KAFKA_DATA", data.as_str()),
                ("KAFKA_WATCH_PID", pid.as_str()),
            ],
        )
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("cadenza-testkit: stopping the Kafka broker failed: {e}");
        }
    }
}

/// Install Kafka's jars (a no-op once cached), turning a missing JDK or Maven into a message
/// that says what to install instead of a script trace.
pub fn install() -> Result<()> {
    if !tool_runs("java") {
        return Err(Error::Missing {
            tool: "java",
            hint: "the Kafka broker needs a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)",
        });
    }
    run_script("install", &[]).map(drop).map_err(|e| {
        if tool_runs("mvn") {
            e
        } else {
            Error::Missing {
                tool: "mvn",
                hint: "Kafka's jars come from Maven Central through Maven (Debian: apt-get install maven)",
            }
        }
    })
}

fn tool_runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run_script(command: &str, env: &[(&str, &str)]) -> Result<Output> {
    let script = repo_root().join("scripts/kafka.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(command)
        .envs(env.iter().copied())
        .output()?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Script {
            command: command.to_string(),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
