//! dracut's NVMe over Fabrics kernel parameters (`rd.nvmf.*`), read from the /proc/cmdline text.
//!
//! The parameters mean what dracut's 95nvmf module makes of them, found in dracut-ng's
//! `modules.d/95nvmf/parse-nvmf-boot-connections.sh` and the `getarg`/`getargs`/`getargbool` helpers
//! (`dracut-lib.sh`, `src/util/util.c`):
//!
//! - Words are split as the kernel splits them (`next_arg`): whitespace separates, `"` toggles
//!   quoting, quotes around a value or a whole word are dropped. Names compare exactly.
//! - `rd.nonvmf` stops everything: no other parameter is read. It and `rd.nvmf.nostatic` are
//!   booleans: the last occurrence counts; bare, empty or any value but `0`, `no`, `off` is true.
//! - `rd.nvmf.hostnqn=`, `rd.nvmf.hostid=`: the last occurrence counts; bare or empty means unset.
//!   The deprecated `nvmf.hostnqn=`, `nvmf.hostid=` are read only when the `rd.` name is absent.
//! - `rd.nvmf.discover=TRTYPE,TRADDR[,HOST_TRADDR[,TRSVCID]]`: every occurrence in order, then every
//!   deprecated `nvmf.discover=`. A bare one counts as its own name (and is then malformed). Each value
//!   is split at whitespace again (a quoted value may hold several entries), then at commas as the
//!   shell splits: an empty field in the middle counts, a single trailing comma adds none
//!   (`tcp,A,` has 2 fields, `tcp,A,,` has 3). 2 to 4 fields, or the entry is skipped with a warning.
//! - Empty fields take defaults: no transport, no traddr, no host_traddr, trsvcid 4420 — for tcp too,
//!   where nvme-cli would assume 8009 for discovery.
//! - traddr is required. tcp and rdma are used as given; fc requires host_traddr and passes no
//!   trsvcid; `fc,auto` sets `fc_auto`, drops the entries read so far and ends the list (dracut deletes
//!   discovery.conf then, as it does for `rd.nvmf.nostatic`); other transports, loop included, are
//!   skipped with a warning.
//! - There is no IPv6 bracket handling: `tcp,[fe80::1]` keeps the brackets in traddr (the kernel then
//!   refuses the address). Fields cannot contain commas, so an IPv6 address needs no brackets.
//!
//! dracut writes each entry to discovery.conf as connect-all options and nvme-cli parses that line;
//! likewise each entry here goes through [`crate::config::parse_connect_line`], so a value the kernel
//! would refuse (a malformed FC address or port) is a warning now. Host NQN and host ID are checked
//! as in /etc/nvme, where dracut writes them; a bad one is a warning and is not used.
//!
//! dracut also reads /etc/cmdline and /etc/cmdline.d/*.conf before /proc/cmdline: a caller that wants
//! them concatenates the texts. Kernel whitespace includes 0xA0 (Latin-1); here only ASCII counts.

use crate::config::{self, DiscoverySource};

/// What the kernel command line says about NVMe over Fabrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvmfCmdline {
    pub discover: Vec<DiscoverySource>,
    /// `rd.nvmf.discover=fc,auto`: connect whatever the FC transport reports.
    pub fc_auto: bool,
    pub hostnqn: Option<String>,
    pub hostid: Option<String>,
    /// `rd.nvmf.nostatic`: ignore the discovery.conf baked into the initramfs.
    pub nostatic: bool,
    /// `rd.nonvmf`: do nothing for NVMe over Fabrics; every other field is left unset.
    pub nonvmf: bool,
    /// `rd.nvmf.nonbft`: leave the firmware's boot table (NBFT) alone, as dracut's nvmf does.
    pub nonbft: bool,
}

impl NvmfCmdline {
    /// dracut deletes discovery.conf for `rd.nvmf.nostatic` and for `fc,auto` alike.
    pub fn ignores_discovery_conf(&self) -> bool {
        self.nostatic || self.fc_auto
    }
}

/// Parse the /proc/cmdline text: the `rd.nvmf.*` parameters and warnings about bad ones.
pub fn parse_cmdline(text: &str) -> (NvmfCmdline, Vec<String>) {
    let args: Vec<(&str, Option<&str>)> = KernelArgs { rest: text }.collect();
    let mut warnings = Vec::new();
    let mut nvmf = NvmfCmdline::default();
    if flag(&args, "rd.nonvmf") {
        warnings.push("rd.nonvmf: skipping NVMe over Fabrics".to_owned());
        nvmf.nonvmf = true;
        return (nvmf, warnings);
    }
    nvmf.nostatic = flag(&args, "rd.nvmf.nostatic");
    nvmf.nonbft = flag(&args, "rd.nvmf.nonbft");
    nvmf.hostnqn = identity(&args, "hostnqn", config::check_nqn, &mut warnings);
    nvmf.hostid = identity(&args, "hostid", config::check_uuid, &mut warnings);
    for entry in discover_entries(&args, &mut warnings) {
        match parse_discover(entry) {
            Discover::Source(source) => nvmf.discover.push(*source),
            Discover::FcAuto => {
                nvmf.fc_auto = true;
                nvmf.discover.clear();
                break;
            }
            Discover::Skip(why) => warnings.push(format!("rd.nvmf.discover={entry}: {why}")),
        }
    }
    (nvmf, warnings)
}

/// The value of the last occurrence of `name`: `Some(None)` when it was given bare.
fn last<'a>(args: &[(&str, Option<&'a str>)], name: &str) -> Option<Option<&'a str>> {
    args.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// dracut's `getargbool 0 NAME`.
fn flag(args: &[(&str, Option<&str>)], name: &str) -> bool {
    match last(args, name) {
        None => false,
        Some(None) => true,
        Some(Some(value)) => !matches!(value, "0" | "no" | "off"),
    }
}

/// dracut's `getarg rd.nvmf.KEY -d nvmf.KEY=`, checked as the /etc/nvme file it is written to.
fn identity(
    args: &[(&str, Option<&str>)],
    key: &str,
    check: fn(&str) -> Result<(), &'static str>,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let name = format!("rd.nvmf.{key}");
    let old = name.strip_prefix("rd.").unwrap_or(&name);
    let (used, value) = match last(args, &name) {
        Some(value) => (name.as_str(), value),
        None => {
            let value = last(args, old)?;
            warnings.push(deprecated(old, &name));
            (old, value)
        }
    };
    let value = value.filter(|v| !v.is_empty())?;
    match check(value) {
        Ok(()) => Some(value.to_owned()),
        Err(why) => {
            warnings.push(format!("ignoring {used}={}: {why}", value.escape_debug()));
            None
        }
    }
}

fn deprecated(old: &str, new: &str) -> String {
    format!("kernel command line option '{old}' is deprecated, use '{new}' instead")
}

/// dracut's `for d in $(getargs rd.nvmf.discover -d nvmf.discover=)`.
fn discover_entries<'a>(
    args: &[(&'a str, Option<&'a str>)],
    warnings: &mut Vec<String>,
) -> Vec<&'a str> {
    let mut entries = Vec::new();
    for name in ["rd.nvmf.discover", "nvmf.discover"] {
        let before = entries.len();
        for (n, value) in args.iter().filter(|(n, _)| *n == name) {
            // getargs prints the name itself for a bare occurrence.
            let value = value.unwrap_or(n);
            entries.extend(value.split([' ', '\t', '\n']).filter(|w| !w.is_empty()));
        }
        if name == "nvmf.discover" && entries.len() > before {
            warnings.push(deprecated(name, "rd.nvmf.discover"));
        }
    }
    entries
}

enum Discover {
    Source(Box<DiscoverySource>),
    FcAuto,
    Skip(String),
}

/// dracut's `parse_nvmf_discover` for one entry.
fn parse_discover(entry: &str) -> Discover {
    let fields = shell_fields(entry);
    if !(2..=4).contains(&fields.len()) {
        return Discover::Skip("expected TRTYPE,TRADDR[,HOST_TRADDR[,TRSVCID]]".to_owned());
    }
    let field = |i: usize, default: &'static str| {
        fields
            .get(i)
            .copied()
            .filter(|f| !f.is_empty())
            .unwrap_or(default)
    };
    let (trtype, traddr) = (field(0, "none"), field(1, "none"));
    let (host_traddr, trsvcid) = (field(2, "none"), field(3, "4420"));
    if traddr == "none" {
        return Discover::Skip(format!("traddr is mandatory for {trtype}"));
    }
    let mut words = vec![
        format!("--transport={trtype}"),
        format!("--traddr={traddr}"),
        format!("--host-traddr={host_traddr}"),
    ];
    match trtype {
        "tcp" | "rdma" => words.push(format!("--trsvcid={trsvcid}")),
        "fc" if traddr == "auto" => return Discover::FcAuto,
        "fc" if host_traddr == "none" => {
            return Discover::Skip("host traddr is mandatory for fc".to_owned());
        }
        "fc" => {}
        other => return Discover::Skip(format!("unsupported transport {other}")),
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match config::parse_connect_line(&words) {
        Ok(source) => Discover::Source(Box::new(source)),
        Err(e) => Discover::Skip(e.to_string()),
    }
}

/// Split at commas as `IFS=,; set -- $entry` does: a trailing comma ends a field, it starts none.
fn shell_fields(entry: &str) -> Vec<&str> {
    if entry.is_empty() {
        return Vec::new();
    }
    let mut fields: Vec<&str> = entry.split(',').collect();
    if entry.ends_with(',') {
        fields.pop();
    }
    fields
}

fn is_kernel_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Kernel command line words as `(name, value)`, split as lib/cmdline.c `next_arg` splits them.
struct KernelArgs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for KernelArgs<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.bytes().position(|b| !is_kernel_space(b))?;
        let word = self.rest.get(start..).unwrap_or("");
        let (quoted, word) = match word.strip_prefix('"') {
            Some(inner) => (true, inner),
            None => (false, word),
        };
        let mut in_quote = quoted;
        let mut equals = None;
        let mut end = word.len();
        for (i, b) in word.bytes().enumerate() {
            if is_kernel_space(b) && !in_quote {
                end = i;
                break;
            }
            if b == b'=' && equals.is_none() {
                equals = Some(i);
            }
            if b == b'"' {
                in_quote = !in_quote;
            }
        }
        // Every index above is at an ASCII byte, so these slices fall on char boundaries.
        let token = word.get(..end).unwrap_or("");
        self.rest = word.get(end..).unwrap_or("");
        Some(split_token(token, equals, quoted))
    }
}

/// `name=value` with next_arg's quote removal: a value's opening quote goes with its closing one,
/// and a word that opened with a quote loses its final quote.
fn split_token(token: &str, equals: Option<usize>, quoted: bool) -> (&str, Option<&str>) {
    let Some(eq) = equals else {
        let name = if quoted {
            token.strip_suffix('"').unwrap_or(token)
        } else {
            token
        };
        return (name, None);
    };
    let name = token.get(..eq).unwrap_or("");
    let mut value = token.get(eq + 1..).unwrap_or("");
    let mut tail_done = false;
    if let Some(inner) = value.strip_prefix('"') {
        value = inner;
        if let Some(inner) = value.strip_suffix('"') {
            value = inner;
            tail_done = true;
        }
    }
    if quoted && !tail_done {
        value = value.strip_suffix('"').unwrap_or(value);
    }
    (name, Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(&str, Option<&str>)> {
        KernelArgs { rest: text }.collect()
    }

    fn addrs(nvmf: &NvmfCmdline) -> Vec<String> {
        nvmf.discover.iter().map(|s| s.addr.to_string()).collect()
    }

    const FC_T: &str = "nn-0x200400a098d85236:pn-0x201400a098d85236";
    const FC_H: &str = "nn-0x200000109b7db455:pn-0x100000109b7db455";

    #[test]
    fn kernel_word_splitting_and_quotes() {
        assert_eq!(words(""), []);
        assert_eq!(words(" \n"), []);
        assert_eq!(
            words("BOOT_IMAGE=/vmlinuz ro  quiet\trd.nvmf.nostatic\n"),
            [
                ("BOOT_IMAGE", Some("/vmlinuz")),
                ("ro", None),
                ("quiet", None),
                ("rd.nvmf.nostatic", None)
            ]
        );
        assert_eq!(words(r#"a="b c" d"#), [("a", Some("b c")), ("d", None)]);
        assert_eq!(words(r#""a=b c" d"#), [("a", Some("b c")), ("d", None)]);
        assert_eq!(words(r#""flag x""#), [("flag x", None)]);
        assert_eq!(words(r#"a=b"c d"e"#), [("a", Some(r#"b"c d"e"#))]);
        assert_eq!(words("a==b"), [("a", Some("=b"))]);
        assert_eq!(words(r#"a=" x=""#), [("a", Some(" x="))]);
        assert_eq!(words(r#"a="#), [("a", Some(""))]);
        assert_eq!(words(r#"a=""#), [("a", Some(""))]);
        assert_eq!(words(r#"""#), [("", None)]);
        assert_eq!(words(r#""x="abc""#), [("x", Some("abc"))]);
        assert_eq!(words(r#""a=""#), [("a", Some(""))]);
        assert_eq!(words(r#"x="a"b""#), [("x", Some(r#"a"b"#))]);
        assert_eq!(
            words(r#"a="unterminated x"#),
            [("a", Some("unterminated x"))]
        );
    }

    #[test]
    fn dracut_examples() {
        let text = "rd.nvmf.hostnqn=nqn.2014-08.org.nvmexpress:uuid:37303738-3034-584d-5137-333230423843 \
            rd.nvmf.discover=rdma,192.168.1.3,,4420 rd.nvmf.discover=tcp,192.168.1.3,,4420 \
            rd.nvmf.discover=tcp,192.168.1.4 \
            rd.nvmf.discover=fc,nn-0x200400a098d85236:pn-0x201400a098d85236,nn-0x200000109b7db455:pn-0x100000109b7db455\n";
        let (nvmf, warnings) = parse_cmdline(text);
        assert_eq!(warnings, Vec::<String>::new());
        assert_eq!(
            nvmf.hostnqn.as_deref(),
            Some("nqn.2014-08.org.nvmexpress:uuid:37303738-3034-584d-5137-333230423843")
        );
        assert_eq!(
            addrs(&nvmf),
            [
                "rdma traddr=192.168.1.3,trsvcid=4420".to_owned(),
                "tcp traddr=192.168.1.3,trsvcid=4420".to_owned(),
                // dracut's default port is 4420 for tcp too.
                "tcp traddr=192.168.1.4,trsvcid=4420".to_owned(),
                format!("fc traddr={FC_T},host_traddr={FC_H}"),
            ]
        );
        assert!(nvmf.discover.iter().all(|s| !s.persistent));
        assert!(!nvmf.fc_auto && !nvmf.nostatic && !nvmf.nonvmf);
    }

    #[test]
    fn fields_split_as_the_shell_splits_them() {
        assert_eq!(shell_fields(""), Vec::<&str>::new());
        assert_eq!(shell_fields(","), [""]);
        assert_eq!(shell_fields("a,b,"), ["a", "b"]);
        assert_eq!(shell_fields("a,b,,"), ["a", "b", ""]);
        assert_eq!(shell_fields(",a"), ["", "a"]);
        assert_eq!(shell_fields("a,,b"), ["a", "", "b"]);
        let (nvmf, warnings) = parse_cmdline(
            "rd.nvmf.discover=tcp,10.0.0.1, rd.nvmf.discover=tcp,10.0.0.2,, \
             rd.nvmf.discover=tcp,10.0.0.3,10.0.0.9,",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            addrs(&nvmf),
            [
                "tcp traddr=10.0.0.1,trsvcid=4420",
                "tcp traddr=10.0.0.2,trsvcid=4420",
                "tcp traddr=10.0.0.3,trsvcid=4420,host_traddr=10.0.0.9",
            ]
        );
    }

    #[test]
    fn bad_entries_are_warnings() {
        let (nvmf, warnings) = parse_cmdline(
            "rd.nvmf.discover=tcp rd.nvmf.discover=tcp,a,b,c,d rd.nvmf.discover=,10.0.0.1 \
             rd.nvmf.discover=tcp,,x rd.nvmf.discover=loop,x rd.nvmf.discover=fc,x \
             rd.nvmf.discover rd.nvmf.discover= rd.nvmf.discover=tcp,10.0.0.1,,http \
             rd.nvmf.discover=fc,x,y rd.nvmf.discover=tcp,10.0.0.5",
        );
        assert_eq!(addrs(&nvmf), ["tcp traddr=10.0.0.5,trsvcid=4420"]);
        assert_eq!(
            warnings,
            [
                "rd.nvmf.discover=tcp: expected TRTYPE,TRADDR[,HOST_TRADDR[,TRSVCID]]",
                "rd.nvmf.discover=tcp,a,b,c,d: expected TRTYPE,TRADDR[,HOST_TRADDR[,TRSVCID]]",
                "rd.nvmf.discover=,10.0.0.1: unsupported transport none",
                "rd.nvmf.discover=tcp,,x: traddr is mandatory for tcp",
                "rd.nvmf.discover=loop,x: unsupported transport loop",
                "rd.nvmf.discover=fc,x: host traddr is mandatory for fc",
                "rd.nvmf.discover=rd.nvmf.discover: expected TRTYPE,TRADDR[,HOST_TRADDR[,TRSVCID]]",
                "rd.nvmf.discover=tcp,10.0.0.1,,http: invalid value 'http' for --trsvcid: \
                 expected a port number from 1 to 65535",
                "rd.nvmf.discover=fc,x,y: invalid value 'x' for --traddr: \
                 expected nn-0x<16 hex digits>:pn-0x<16 hex digits>",
            ]
        );
    }

    #[test]
    fn fc_auto_drops_earlier_entries_and_ends_the_list() {
        let (nvmf, warnings) = parse_cmdline(
            "rd.nvmf.discover=tcp,10.0.0.1 rd.nvmf.discover=fc,auto rd.nvmf.discover=tcp,10.0.0.2",
        );
        assert!(warnings.is_empty());
        assert!(nvmf.fc_auto && nvmf.discover.is_empty());
        assert!(nvmf.ignores_discovery_conf() && !nvmf.nostatic);
    }

    #[test]
    fn quoted_value_holds_several_entries() {
        let (nvmf, _) = parse_cmdline(r#"rd.nvmf.discover="tcp,10.0.0.1 rdma,10.0.0.2,,4421""#);
        assert_eq!(
            addrs(&nvmf),
            [
                "tcp traddr=10.0.0.1,trsvcid=4420",
                "rdma traddr=10.0.0.2,trsvcid=4421"
            ]
        );
    }

    #[test]
    fn ipv6_goes_through_as_written() {
        let (nvmf, w) = parse_cmdline("rd.nvmf.discover=tcp,fe80::1%eth0,,8009");
        assert!(w.is_empty());
        assert_eq!(addrs(&nvmf), ["tcp traddr=fe80::1%eth0,trsvcid=8009"]);
        let (nvmf, _) = parse_cmdline("rd.nvmf.discover=tcp,[fd00::5]");
        assert_eq!(nvmf.discover[0].addr.traddr.as_str(), "[fd00::5]");
    }

    #[test]
    fn host_identity_last_occurrence_wins() {
        let id = "2b9f0ff4-4fe6-4d56-9ab3-2d5a1c3f1a5e";
        let (nvmf, w) = parse_cmdline(&format!(
            "rd.nvmf.hostnqn=nqn.a rd.nvmf.hostnqn=nqn.b rd.nvmf.hostid={id}"
        ));
        assert!(w.is_empty());
        assert_eq!(nvmf.hostnqn.as_deref(), Some("nqn.b"));
        assert_eq!(nvmf.hostid.as_deref(), Some(id));
        // A bare or empty last occurrence unsets it, and hides the deprecated name.
        let (nvmf, w) = parse_cmdline("nvmf.hostnqn=nqn.old rd.nvmf.hostnqn=nqn.a rd.nvmf.hostnqn");
        assert_eq!((nvmf.hostnqn, w.len()), (None, 0));
        let (nvmf, _) = parse_cmdline("rd.nvmf.hostnqn=nqn.a rd.nvmf.hostnqn=");
        assert_eq!(nvmf.hostnqn, None);
    }

    #[test]
    fn deprecated_names() {
        let (nvmf, w) = parse_cmdline(
            "nvmf.hostnqn=nqn.old nvmf.discover=tcp,10.0.0.9 rd.nvmf.discover=tcp,10.0.0.1",
        );
        assert_eq!(nvmf.hostnqn.as_deref(), Some("nqn.old"));
        // rd.nvmf.discover entries come first, then the deprecated ones.
        assert_eq!(
            addrs(&nvmf),
            [
                "tcp traddr=10.0.0.1,trsvcid=4420",
                "tcp traddr=10.0.0.9,trsvcid=4420"
            ]
        );
        assert_eq!(
            w,
            [
                "kernel command line option 'nvmf.hostnqn' is deprecated, use 'rd.nvmf.hostnqn' instead",
                "kernel command line option 'nvmf.discover' is deprecated, use 'rd.nvmf.discover' instead",
            ]
        );
    }

    #[test]
    fn bad_host_identity_is_a_warning() {
        let (nvmf, w) = parse_cmdline("rd.nvmf.hostnqn=host1 rd.nvmf.hostid=1234");
        assert_eq!((nvmf.hostnqn, nvmf.hostid), (None, None));
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("ignoring rd.nvmf.hostnqn=host1: expected an NQN"));
        assert!(w[1].starts_with("ignoring rd.nvmf.hostid=1234: expected a UUID"));
    }

    #[test]
    fn booleans_as_getargbool() {
        for (text, on) in [
            ("rd.nvmf.nostatic", true),
            ("rd.nvmf.nostatic=1", true),
            ("rd.nvmf.nostatic=", true),
            ("rd.nvmf.nostatic=yes", true),
            ("rd.nvmf.nostatic=0", false),
            ("rd.nvmf.nostatic=no", false),
            ("rd.nvmf.nostatic=off", false),
            ("rd.nvmf.nostatic=0 rd.nvmf.nostatic", true),
            ("rd.nvmf.nostatic rd.nvmf.nostatic=off", false),
            ("rd_nvmf_nostatic", false),
            ("", false),
        ] {
            assert_eq!(parse_cmdline(text).0.nostatic, on, "{text}");
        }
    }

    #[test]
    fn nonbft_is_a_flag() {
        assert!(parse_cmdline("rd.nvmf.nonbft").0.nonbft);
        assert!(parse_cmdline("quiet rd.nvmf.nonbft=1 root=/dev/x").0.nonbft);
        assert!(!parse_cmdline("rd.nvmf.nonbft=0").0.nonbft);
        assert!(!parse_cmdline("rd.nvmf.nostatic").0.nonbft);
    }

    #[test]
    fn nonvmf_stops_everything() {
        let (nvmf, w) = parse_cmdline(
            "rd.nvmf.discover=tcp,10.0.0.1 rd.nvmf.hostnqn=nqn.a rd.nvmf.nostatic rd.nonvmf",
        );
        assert_eq!(
            nvmf,
            NvmfCmdline {
                nonvmf: true,
                ..Default::default()
            }
        );
        assert_eq!(w, ["rd.nonvmf: skipping NVMe over Fabrics"]);
        assert!(!parse_cmdline("rd.nonvmf=0").0.nonvmf);
    }

    #[test]
    fn unrelated_command_line() {
        let (nvmf, w) = parse_cmdline(
            "BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.12 root=UUID=1 ro console=ttyS0,115200 -- single\n",
        );
        assert_eq!((nvmf, w), (NvmfCmdline::default(), vec![]));
    }
}
