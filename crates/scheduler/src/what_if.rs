//! `flotilla schedule -f FILE` (placeholder).
/// Output format.
#[derive(Debug, Clone, Copy)]
pub enum OutputFormat {
    Json,
}
/// Outcome.
#[derive(Debug)]
pub struct Outcome;
/// What-if.
pub fn what_if(_s: &str) -> crate::Result<Outcome> {
    Ok(Outcome)
}
/// Format.
pub fn format_outcome(_o: &Outcome, _f: OutputFormat) -> crate::Result<String> {
    Ok(String::new())
}
