//! [`Command`] and [`Stdio`]: what to run and where its standard streams go.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A command to run: the program, its arguments, environment, working directory and standard
/// streams (std's `std::process::Command`, as plain data that can be cloned and sent to a task).
///
/// Build one as you would a std command, then hand it to [`run_process`](crate::run_process)
/// or [`open_process`](crate::open_process):
///
/// ```
/// use trio::process::{Command, Stdio};
///
/// let mut command = Command::new("ls");
/// command.arg("-l").arg("/").stdout(Stdio::null());
/// assert_eq!(command.to_string(), "ls -l /");
/// ```
///
/// Both functions take `impl Into<Command>`, so a command can also be written as an array or
/// vector of strings (`["ls", "-l", "/"]`, the program first), or a bare program name, or
/// `&command` to run a command and keep it.
///
/// A standard stream that is not set is inherited from this process, except that
/// [`run_process`](crate::run_process) gives the child an empty stdin unless told otherwise
/// (Trio's default).
#[derive(Clone, Default)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env_clear: bool,
    pub(crate) envs: Vec<(OsString, Option<OsString>)>,
    pub(crate) current_dir: Option<PathBuf>,
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    pub(crate) process_group: Option<i32>,
}

impl Command {
    /// A command that runs `program` (found on `PATH` unless it contains a `/`), with no
    /// arguments.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            program: program.as_ref().to_owned(),
            ..Command::default()
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.envs
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Self::env) adds later).
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.envs.clear();
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Where the child's standard input comes from.
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdin = Some(stdio.into());
        self
    }

    /// Where the child's standard output goes.
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdout = Some(stdio.into());
        self
    }

    /// Where the child's standard error goes; [`Stdio::same_as_stdout`] sends it wherever
    /// standard output goes, interleaved.
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stderr = Some(stdio.into());
        self
    }

    /// Puts the child in process group `pgid`, or in a new group of its own with `0`
    /// (`setpgid`). A child outside the terminal's foreground group does not get the
    /// terminal's Ctrl-C: trio's cancellation is then the only thing that stops it.
    pub fn process_group(&mut self, pgid: i32) -> &mut Self {
        self.process_group = Some(pgid);
        self
    }

    /// The program.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments (without the program).
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The command as std's `std::process::Command`, with its standard streams left as std's
    /// defaults (the stream settings of trio's command are applied when trio spawns it).
    pub(crate) fn to_std(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        if self.env_clear {
            command.env_clear();
        }
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        if let Some(pgid) = self.process_group {
            use std::os::unix::process::CommandExt;
            command.process_group(pgid);
        }
        command
    }
}

/// Shell-like: the words separated by spaces, a word with spaces or quotes in Rust's quoting.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_word(f, &self.program)?;
        for arg in &self.args {
            f.write_str(" ")?;
            write_word(f, arg)?;
        }
        Ok(())
    }
}

fn write_word(f: &mut fmt::Formatter<'_>, word: &OsStr) -> fmt::Result {
    let text = word.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '\\'));
    if plain {
        f.write_str(&text)
    } else {
        write!(f, "{text:?}")
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Command");
        d.field("program", &self.program).field("args", &self.args);
        if self.env_clear {
            d.field("env_clear", &true);
        }
        if !self.envs.is_empty() {
            d.field("envs", &self.envs);
        }
        if let Some(dir) = &self.current_dir {
            d.field("current_dir", dir);
        }
        for (name, stdio) in [
            ("stdin", &self.stdin),
            ("stdout", &self.stdout),
            ("stderr", &self.stderr),
        ] {
            if let Some(stdio) = stdio {
                d.field(name, stdio);
            }
        }
        if let Some(pgid) = self.process_group {
            d.field("process_group", &pgid);
        }
        d.finish()
    }
}

impl From<&Command> for Command {
    fn from(command: &Command) -> Self {
        command.clone()
    }
}

impl From<&mut Command> for Command {
    fn from(command: &mut Command) -> Self {
        command.clone()
    }
}

impl From<&str> for Command {
    /// The program alone, without arguments (`"ls -l"` runs a program named `ls -l`: write
    /// `["ls", "-l"]`).
    fn from(program: &str) -> Self {
        Command::new(program)
    }
}

impl From<String> for Command {
    /// The program alone, without arguments.
    fn from(program: String) -> Self {
        Command::new(program)
    }
}

impl<S: AsRef<OsStr>, const N: usize> From<[S; N]> for Command {
    /// The program, then its arguments. An empty array makes a command that fails to spawn.
    fn from(words: [S; N]) -> Self {
        from_words(words)
    }
}

impl<S: AsRef<OsStr>> From<&[S]> for Command {
    /// The program, then its arguments. An empty slice makes a command that fails to spawn.
    fn from(words: &[S]) -> Self {
        from_words(words)
    }
}

impl<S: AsRef<OsStr>> From<Vec<S>> for Command {
    /// The program, then its arguments. An empty vector makes a command that fails to spawn.
    fn from(words: Vec<S>) -> Self {
        from_words(words)
    }
}

fn from_words<S: AsRef<OsStr>>(words: impl IntoIterator<Item = S>) -> Command {
    let mut words = words.into_iter();
    let mut command = Command::default();
    if let Some(program) = words.next() {
        command.program = program.as_ref().to_owned();
    }
    command.args(words);
    command
}

/// Where one of a child's standard streams goes (std's `std::process::Stdio`, cloneable).
///
/// - [`Stdio::inherit`] is this process's stream (the default for
///   [`open_process`](crate::open_process)).
/// - [`Stdio::null`] is `/dev/null`.
/// - [`Stdio::piped`] is a pipe to this process, which the
///   [`Process`](crate::process::Process) offers as a trio stream
///   ([`Process::stdin`](crate::process::Process::stdin), ...).
/// - [`Stdio::same_as_stdout`], for stderr only, is wherever stdout goes.
/// - An open file or fd (`From<File>`, `From<OwnedFd>`): the child gets a duplicate of it.
#[derive(Clone)]
pub struct Stdio(pub(crate) StdioKind);

#[derive(Clone)]
pub(crate) enum StdioKind {
    Inherit,
    Null,
    Piped,
    SameAsStdout,
    Fd(Arc<OwnedFd>),
}

impl Stdio {
    /// The child uses this process's stream.
    pub fn inherit() -> Self {
        Stdio(StdioKind::Inherit)
    }

    /// The child's stream is `/dev/null`: reading gives end-of-file at once, writing is
    /// discarded.
    pub fn null() -> Self {
        Stdio(StdioKind::Null)
    }

    /// A pipe between the child and this process, offered as a trio stream by the
    /// [`Process`](crate::process::Process).
    pub fn piped() -> Self {
        Stdio(StdioKind::Piped)
    }

    /// For [`Command::stderr`] only: the child's standard error goes wherever its standard
    /// output goes, interleaved in the order the child writes (Python's `subprocess.STDOUT`).
    /// Spawning fails with a [`UsageError`](crate::UsageError) if it is given for stdin or
    /// stdout.
    pub fn same_as_stdout() -> Self {
        Stdio(StdioKind::SameAsStdout)
    }

    pub(crate) fn is_piped(&self) -> bool {
        matches!(self.0, StdioKind::Piped)
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            StdioKind::Inherit => f.write_str("Stdio::inherit()"),
            StdioKind::Null => f.write_str("Stdio::null()"),
            StdioKind::Piped => f.write_str("Stdio::piped()"),
            StdioKind::SameAsStdout => f.write_str("Stdio::same_as_stdout()"),
            StdioKind::Fd(fd) => write!(f, "Stdio::from({fd:?})"),
        }
    }
}

impl From<OwnedFd> for Stdio {
    /// The child gets a duplicate of `fd`; this one closes when the last clone of the
    /// `Stdio` (and of commands holding it) is dropped.
    fn from(fd: OwnedFd) -> Self {
        Stdio(StdioKind::Fd(Arc::new(fd)))
    }
}

impl From<File> for Stdio {
    /// The child reads or writes the file (at its current offset, which it shares).
    fn from(file: File) -> Self {
        Stdio::from(OwnedFd::from(file))
    }
}
