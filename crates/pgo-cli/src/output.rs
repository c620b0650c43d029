//! Plain aligned tables, and JSON or YAML for scripts.

use crate::CliError;
use crate::args::Format;
use serde::Serialize;
use std::io::Write;

/// Writes to standard output. A reader that went away (`pgo … | head`) ends
/// the command quietly instead of with a panic.
pub fn write_out(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                CliError::Closed
            } else {
                CliError::Local(format!("cannot write the output: {e}"))
            }
        })
}

/// Asks `question` on a terminal and reads y/N. Without `ask` (the
/// `--no-prompt` flag), or without a terminal, the answer is yes: scripts
/// are not asked.
pub fn confirm(ask: bool, question: &str) -> Result<bool, CliError> {
    use std::io::{BufRead, IsTerminal};
    if !ask || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    write_out(&format!("{question} [y/N] "))?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Local(e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `print!` that returns an error instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::write_out(&format!($($arg)*))? };
}

/// `println!` that returns an error instead of panicking.
macro_rules! sayln {
    () => { $crate::output::write_out("\n")? };
    ($($arg:tt)*) => { $crate::output::write_out(&(format!($($arg)*) + "\n"))? };
}

pub(crate) use {say, sayln};

/// Bytes as people read them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(indent);
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Prints `value` as JSON or YAML; false for `Table`, which the caller prints.
pub fn structured<T: Serialize>(format: Format, value: &T) -> Result<bool, CliError> {
    let text = match format {
        Format::Table => return Ok(false),
        Format::Json => {
            serde_json::to_string_pretty(value).map_err(|e| CliError::Local(e.to_string()))? + "\n"
        }
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| CliError::Local(e.to_string()))?,
    };
    write_out(&text)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let t = super::table(
            &["NAME", "READY"],
            &[vec!["a-long-name".into(), "yes".into()]],
            "",
        );
        assert_eq!(t, "NAME         READY\na-long-name  yes\n");
    }
}
