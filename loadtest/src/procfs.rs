//! Reads of `/proc`: CPU time and resident memory of a process, and the machine facts
//! printed with every benchmark. Parsers are pure functions over the file text.

use anyhow::{Context, anyhow};

/// CPU time of a process (all threads), in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTicks {
    pub(crate) user: u64,
    pub(crate) system: u64,
}

impl CpuTicks {
    pub(crate) fn total(&self) -> u64 {
        self.user + self.system
    }

    /// Ticks spent between `earlier` and `self`.
    pub(crate) fn since(&self, earlier: &CpuTicks) -> u64 {
        self.total().saturating_sub(earlier.total())
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name
/// (field 2) is in parentheses and may itself contain spaces and `)`, so fields are counted
/// from the last `)`.
pub(crate) fn parse_stat(text: &str) -> anyhow::Result<CpuTicks> {
    let after_comm = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| anyhow!("no command name in /proc stat line"))?;
    // After the name: field 3 (state) is index 0, so utime (14) is index 11.
    let mut fields = after_comm.split_ascii_whitespace().skip(11);
    let mut next = |name: &str| -> anyhow::Result<u64> {
        fields
            .next()
            .ok_or_else(|| anyhow!("/proc stat line too short for {name}"))?
            .parse()
            .with_context(|| format!("{name} in /proc stat line"))
    };
    Ok(CpuTicks {
        user: next("utime")?,
        system: next("stime")?,
    })
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub(crate) fn parse_rss_kib(status: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS line (process gone or a kernel thread)"))?;
    let number = line
        .trim()
        .strip_suffix("kB")
        .ok_or_else(|| anyhow!("VmRSS not in kB: {line:?}"))?;
    number.trim().parse().context("VmRSS value")
}

/// The first `model name` of `/proc/cpuinfo` (falls back to `Hardware`/`cpu model`).
pub(crate) fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Hardware", "cpu model"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == *key).then(|| v.trim().to_owned())
            })
        })
}

pub(crate) fn cpu_ticks(pid: u32) -> anyhow::Result<CpuTicks> {
    let path = format!("/proc/{pid}/stat");
    parse_stat(&std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?)
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    parse_rss_kib(&std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?)
}

/// `getconf CLK_TCK`, or the Linux default of 100 if that cannot be run.
pub(crate) fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The three load averages of `/proc/loadavg`, or `unknown`.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| parse_load_average(&text))
        .unwrap_or_else(|| "unknown".into())
}

/// `"0.52 0.58 0.59 1/467 12345"` → `"0.52 0.58 0.59"`.
pub(crate) fn parse_load_average(text: &str) -> Option<String> {
    let fields: Vec<&str> = text.split_ascii_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

/// What the report says about the machine it ran on.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) kernel: String,
    pub(crate) clock_ticks: u64,
}

impl Machine {
    pub(crate) fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: parse_cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |k| k.trim().to_owned()),
            clock_ticks: clock_ticks_per_second(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_after_the_last_paren() {
        let line = "4242 (switchboard) S 1 4242 4242 0 -1 4194560 2530 0 0 0 157 43 0 0 20 0 9 0 \
                    123456 1234567 890 18446744073709551615 1 1 0 0 0 0 0 4096 17099 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line).unwrap(),
            CpuTicks {
                user: 157,
                system: 43
            }
        );
        let tricky = "7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat(tricky).unwrap(), CpuTicks { user: 5, system: 6 });
        assert!(parse_stat("7 (x) R 1 2").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn tick_differences() {
        let a = CpuTicks {
            user: 10,
            system: 5,
        };
        let b = CpuTicks {
            user: 40,
            system: 15,
        };
        assert_eq!(b.since(&a), 40);
        assert_eq!(a.since(&b), 0);
    }

    #[test]
    fn rss_and_cpu_model() {
        let status = "Name:\tswitchboard\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status).unwrap(), 12345);
        assert!(parse_rss_kib("Name:\tkthreadd\n").is_err());
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            parse_cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(parse_cpu_model("processor: 0\n"), None);
    }

    #[test]
    fn load_average_fields() {
        assert_eq!(
            parse_load_average("0.52 0.58 0.59 1/467 12345\n").as_deref(),
            Some("0.52 0.58 0.59")
        );
        assert_eq!(parse_load_average("0.52"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        cpu_ticks(pid).unwrap();
    }
}
