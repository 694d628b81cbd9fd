//! Command output on stdout that ends quietly when its reader goes away.
//!
//! Rust ignores `SIGPIPE`, so writing to a closed pipe (`flotilla crds | head -1`) returns
//! `BrokenPipe`, and `println!` turns that into a panic. Commands print through [`Output`]
//! instead: once the reader has gone, the rest of the output is dropped and the command still
//! exits with the status its work earned, as `git` and `ripgrep` do. Any other write error is
//! returned. Never used for logs, which go to stderr through `tracing`.

use std::{
    fmt::Display,
    io::{self, Write},
};

/// A writer for command output that treats a closed reader as the end of the output.
#[derive(Debug)]
pub struct Output<W: Write> {
    writer: W,
    closed: bool,
}

impl Output<io::Stdout> {
    /// Output to the process's stdout.
    pub fn stdout() -> Self {
        Self::new(io::stdout())
    }
}

impl<W: Write> Output<W> {
    /// Output to `writer`.
    pub fn new(writer: W) -> Self {
        Self {
            writer,
            closed: false,
        }
    }

    /// Writes `text` and flushes it, so a closed reader is noticed here and not at exit.
    ///
    /// # Errors
    ///
    /// Any write error except `BrokenPipe`; after a `BrokenPipe`, every write does nothing.
    pub fn print(&mut self, text: impl Display) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let written = write!(self.writer, "{text}").and_then(|()| self.writer.flush());
        match written {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(error) => Err(io::Error::new(
                error.kind(),
                format!("cannot write the output: {error}"),
            )),
            Ok(()) => Ok(()),
        }
    }

    /// Writes `text` and a newline; see [`Output::print`].
    ///
    /// # Errors
    ///
    /// Any write error except `BrokenPipe`.
    pub fn println(&mut self, text: impl Display) -> io::Result<()> {
        self.print(format_args!("{text}\n"))
    }

    /// Whether the reader has gone, so a command that could print for long can stop early.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts `room` bytes and then fails with `kind`.
    struct Failing {
        written: Vec<u8>,
        room: usize,
        kind: io::ErrorKind,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written.len() >= self.room {
                return Err(io::Error::from(self.kind));
            }
            let n = buf.len().min(self.room - self.written.len());
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn failing(room: usize, kind: io::ErrorKind) -> Output<Failing> {
        Output::new(Failing {
            written: Vec::new(),
            room,
            kind,
        })
    }

    #[test]
    fn a_closed_reader_ends_the_output_without_an_error() {
        let mut output = failing(4, io::ErrorKind::BrokenPipe);
        output.println("one").expect("fits");
        assert!(!output.is_closed());
        output.println("two").expect("broken pipe is not an error");
        assert!(output.is_closed());
        output.println("three").expect("still not an error");
        assert_eq!(output.writer.written, b"one\n");
    }

    #[test]
    fn other_write_errors_are_returned() {
        let mut output = failing(0, io::ErrorKind::StorageFull);
        let error = output.print("x").expect_err("disk full is an error");
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert!(
            error.to_string().starts_with("cannot write the output"),
            "{error}"
        );
        assert!(!output.is_closed());
    }

    #[test]
    fn text_is_written_as_given() {
        let mut output = Output::new(Vec::new());
        output.print("a").expect("write");
        output.println(format_args!("b{}", 1)).expect("write");
        assert_eq!(output.writer, b"ab1\n");
    }
}
