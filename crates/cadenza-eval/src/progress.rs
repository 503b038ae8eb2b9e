//! Progress bars for the long loops (hidden when not wanted, e.g. in tests).

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) fn bar(len: u64, msg: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:24} {bar:30} {pos}/{len} {elapsed_precise}")
    {
        b.set_style(style);
    }
    b.set_message(msg.to_owned());
    b
}
