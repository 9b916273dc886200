//! `exfiltration-url`: URLs, capture-service host names and hard-coded e-mail or phone
//! destinations, weighed by host (allowed, private, IP literal, known capture service) and by
//! whether the sentence tells the model to send data there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use regex::Regex;

use super::text::{Folded, escape, reserved_domain, sentence};
use super::{EXFILTRATION_URL, Field, Hit, Role, Severity};

/// Request-capture, paste, tunnel and out-of-band services: no honest tool description points a
/// model at them. Matched as the host or a parent domain of it.
const CAPTURE_HOSTS: &[&str] = &[
    "webhook.site",
    "webhook.cool",
    "requestbin.com",
    "requestbin.net",
    "requestcatcher.com",
    "pipedream.net",
    "hookbin.com",
    "beeceptor.com",
    "postb.in",
    "ptsv2.com",
    "ptsv3.com",
    "ngrok.io",
    "ngrok.app",
    "ngrok.dev",
    "ngrok-free.app",
    "ngrok-free.dev",
    "trycloudflare.com",
    "loca.lt",
    "serveo.net",
    "localhost.run",
    "pastebin.com",
    "paste.ee",
    "hastebin.com",
    "rentry.co",
    "transfer.sh",
    "file.io",
    "0x0.st",
    "interact.sh",
    "oast.fun",
    "oast.pro",
    "oast.live",
    "oast.site",
    "oast.online",
    "oast.me",
    "oastify.com",
    "burpcollaborator.net",
    "dnslog.cn",
    "canarytokens.com",
];
/// Webhook endpoints of chat services, matched as host + path prefix.
const CAPTURE_PATHS: &[&str] = &[
    "discord.com/api/webhooks",
    "discordapp.com/api/webhooks",
    "api.telegram.org/bot",
];
const URL: &str = r"\b(https?|wss?|ftps?)://[^\s<>\x22'`\\)\]]+";
const DATA_URL: &str = r"\bdata:(?P<mime>[a-z0-9.+-]+/[a-z0-9.+-]+)[^\s,\x22'`]*,";
/// Path segments of collection endpoints (weighed only in preset values: documentation links
/// have `/webhooks` and `/upload` pages).
const HOOK_PATH: &str = r"/(webhooks?|hooks?|collect|collector|exfil\w*|ingest|beacon|callback|upload|track|capture|steal|leak|dump)\b";
/// Keys whose values are destinations (`callback_url`, `webhook`).
const DEST_KEY: &str = r"callback|webhook|exfil|sink|collector|beacon";
const SEND: &str = r"\b(send|post|upload|forward|transmit|exfiltrate|submit|leak|e-?mail|beacon|ping|copy|mirror|push|deliver|share|include|attach|append|pass|report|log)\b";
const DATA_NOUN: &str = r"\b(contents?|data|conversation|history|messages?|credentials?|api keys?|keys|tokens?|secrets?|passwords?|results?|output|responses?|e-?mails?|arguments|parameters|everything|environment|env vars|cookies?|session|chat|context|prompts?|user's|personal|pii|e-?mail addresses|contacts|a copy)\b";
const DEST: &str = r"\b(send|forward|bcc|cc|copy|e-?mail|mail|transfer|text|message|sms|deliver|report|upload|post|route|redirect)\b[^\n]{0,80}?\bto\s+['`\x22]?(?P<dest>[\w.+-]+@(?P<domain>[\w-]+(\.[\w-]+)+)|\+?\d[\d ()-]{6,}\d)";
const BCC: &str = r"\b(bcc|cc)\s*:?\s*['`\x22]?[\w.+-]+@(?P<domain>[\w-]+(\.[\w-]+)+)|\b[\w.+-]+@(?P<domain2>[\w-]+(\.[\w-]+)+)['`\x22]?\s+(in|to|as|into)\s+(the\s+)?(bcc|cc)\b";

#[derive(Debug)]
pub(super) struct Urls {
    /// Allowed hosts: (host, only its subdomains).
    allowed: Vec<(String, bool)>,
    url: Regex,
    data_url: Regex,
    bare: Regex,
    hook_path: Regex,
    dest_key: Regex,
    send: Regex,
    data_noun: Regex,
    dest: Regex,
    bcc: Regex,
}

impl Urls {
    pub(super) fn new(allowed: &[String]) -> Result<Urls, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("scanner pattern: {e}"));
        let hosts: Vec<String> = CAPTURE_HOSTS.iter().map(|h| regex::escape(h)).collect();
        let paths: Vec<String> = CAPTURE_PATHS.iter().map(|h| regex::escape(h)).collect();
        // Hosts end on a word boundary; webhook paths run on into ids (`/bot123:…`).
        let bare = format!(r"\b({})\b|\b({})", hosts.join("|"), paths.join("|"));
        Ok(Urls {
            allowed: allowed
                .iter()
                .map(|h| match h.strip_prefix("*.") {
                    Some(rest) => (rest.to_ascii_lowercase(), true),
                    None => (h.to_ascii_lowercase(), false),
                })
                .collect(),
            url: re(URL)?,
            data_url: re(DATA_URL)?,
            bare: re(&bare)?,
            hook_path: re(HOOK_PATH)?,
            dest_key: re(DEST_KEY)?,
            send: re(SEND)?,
            data_noun: re(DATA_NOUN)?,
            dest: re(DEST)?,
            bcc: re(BCC)?,
        })
    }

    pub(super) fn check(&self, field: &Field<'_>, folded: &Folded<'_>, out: &mut Vec<Hit>) {
        let seen = self.urls(field, folded, out);
        self.bare_hosts(folded, &seen, out);
        self.data_urls(field, folded, out);
        self.destinations(folded, out);
    }

    /// `scheme://` URLs, weighed by [`Urls::weigh`]; returns their folded ranges.
    fn urls(
        &self,
        field: &Field<'_>,
        folded: &Folded<'_>,
        out: &mut Vec<Hit>,
    ) -> Vec<Range<usize>> {
        let text = folded.text.as_str();
        let mut seen = Vec::new();
        for m in self.url.find_iter(text) {
            let url = m
                .as_str()
                .trim_end_matches(['.', ',', ';', ':', '!', '?', '*', '\'']);
            let range = m.start()..m.start() + url.len();
            seen.push(range.clone());
            if let Some((severity, why)) = self.weigh(field, text, &range, url) {
                let span = folded.span(range);
                let shown = escape(field.text.get(span.clone()).unwrap_or(url), 80);
                out.push(Hit {
                    rule: EXFILTRATION_URL,
                    severity,
                    span,
                    message: format!("The text points at {shown}: {why}."),
                });
            }
        }
        seen
    }

    /// Capture-service host names written without a scheme (`webhook.site/abc`).
    fn bare_hosts(&self, folded: &Folded<'_>, seen: &[Range<usize>], out: &mut Vec<Hit>) {
        for m in self.bare.find_iter(&folded.text) {
            let inside_url = seen
                .iter()
                .any(|r| r.start <= m.start() && m.end() <= r.end);
            let host = m.as_str().split('/').next().unwrap_or("");
            if inside_url || self.allowed(host) {
                continue;
            }
            out.push(Hit {
                rule: EXFILTRATION_URL,
                severity: Severity::High,
                span: folded.span(m.range()),
                message: format!(
                    "The text names {}, a request-capture, paste or tunnel service used to collect stolen data.",
                    m.as_str()
                ),
            });
        }
    }

    /// `data:` URLs: a payload a reader does not see (an image preset in a value is low).
    fn data_urls(&self, field: &Field<'_>, folded: &Folded<'_>, out: &mut Vec<Hit>) {
        for caps in self.data_url.captures_iter(&folded.text) {
            let Some(m) = caps.get(0) else { continue };
            let mime = caps.name("mime").map_or("", |x| x.as_str());
            let severity = if field.role == Role::Value && mime.starts_with("image/") {
                Severity::Low
            } else {
                Severity::Medium
            };
            out.push(Hit {
                rule: EXFILTRATION_URL,
                severity,
                span: folded.span(m.range()),
                message: format!(
                    "The text embeds a data: URL ({mime}), which can carry a payload past a reader."
                ),
            });
        }
    }

    /// Hard-coded e-mail or phone destinations of a send order.
    fn destinations(&self, folded: &Folded<'_>, out: &mut Vec<Hit>) {
        let text = folded.text.as_str();
        for caps in self.dest.captures_iter(text) {
            let (Some(m), Some(dest)) = (caps.get(0), caps.name("dest")) else {
                continue;
            };
            let domain = caps.name("domain").or_else(|| caps.name("domain2"));
            if domain.is_some_and(|d| self.allowed(d.as_str()) || reserved_domain(d.as_str())) {
                continue;
            }
            let window = sentence(text, &m.range());
            let severity = if self.data_noun.is_match(&text[window]) {
                Severity::High
            } else {
                Severity::Low
            };
            out.push(Hit {
                rule: EXFILTRATION_URL,
                severity,
                span: folded.span(dest.range()),
                message: format!(
                    "The text tells the model to send to a hard-coded address ({}), a way to route data to a third party.",
                    dest.as_str()
                ),
            });
        }
        for caps in self.bcc.captures_iter(text) {
            let Some(m) = caps.get(0) else { continue };
            let domain = caps.name("domain").or_else(|| caps.name("domain2"));
            if domain.is_some_and(|d| self.allowed(d.as_str()) || reserved_domain(d.as_str())) {
                continue;
            }
            out.push(Hit {
                rule: EXFILTRATION_URL,
                severity: Severity::High,
                span: folded.span(m.range()),
                message: "The text adds a hard-coded copy recipient, which silently sends messages to a third party.".to_owned(),
            });
        }
    }

    /// Severity and reason for one URL, or `None` when its host is allowed: first by host,
    /// then by what the text around it or the field it fills says.
    fn weigh(
        &self,
        field: &Field<'_>,
        text: &str,
        range: &Range<usize>,
        url: &str,
    ) -> Option<(Severity, String)> {
        let (host, rest) = split_host(url);
        if self.allowed(&host) {
            return None;
        }
        if let Some(by_host) = weigh_host(&host, rest) {
            return Some(by_host);
        }
        if field.role == Role::Text {
            let window = sentence(text, range);
            let around = [
                &text[window.start..range.start],
                &text[range.end..window.end],
            ];
            let says = |re: &Regex| around.iter().any(|t| re.is_match(t));
            if says(&self.send) && says(&self.data_noun) {
                let why = "the sentence tells the model to send data there";
                return Some((Severity::High, why.to_owned()));
            }
        }
        // A placeholder in the query (`?d={results}`) is data to fill in; one in the path is a
        // REST route (`/repos/{owner}`), and a resource template is made of them.
        let query = rest.find(['?', '#']).map_or("", |q| &rest[q..]);
        let template = field.key.eq_ignore_ascii_case("uriTemplate");
        if !template && (query.contains(['{', '<', '$']) || query.contains("%7b")) {
            let why = "the URL has a placeholder for data to be filled in";
            return Some((Severity::Medium, why.to_owned()));
        }
        if field.role == Role::Value && self.hook_path.is_match(rest) {
            let why = "it is a preset value whose path looks like a collection or webhook endpoint";
            return Some((Severity::Medium, why.to_owned()));
        }
        if field.role == Role::Value && self.dest_key.is_match(&field.key) {
            let key = field.key.rsplit(' ').next().unwrap_or("");
            return Some((
                Severity::Medium,
                format!("it is the preset destination of `{key}`"),
            ));
        }
        Some((
            Severity::Low,
            format!("{host} is not on the allowed hosts list"),
        ))
    }

    fn allowed(&self, host: &str) -> bool {
        self.allowed.iter().any(|(a, subs_only)| {
            (!subs_only && host == a)
                || host
                    .strip_suffix(a.as_str())
                    .is_some_and(|p| p.ends_with('.'))
        })
    }
}

/// The host (lower case, no user info or port) and the rest (path, query) of a URL.
fn split_host(url: &str) -> (String, &str) {
    let after = url.split_once("://").map_or(url, |(_, a)| a);
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    (host.trim_end_matches('.').to_ascii_lowercase(), rest)
}

/// An IP address written as a host, including the all-digit and hex forms browsers accept.
fn ip_literal(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
        return host
            .parse::<u32>()
            .ok()
            .map(|n| IpAddr::V4(Ipv4Addr::from(n)));
    }
    if let Some(hex) = host.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16)
            .ok()
            .map(|n| IpAddr::V4(Ipv4Addr::from(n)));
    }
    None
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            let local = v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80;
            !local && v6 != Ipv6Addr::LOCALHOST
        }
    }
}

/// What the host alone says: a capture service or chat webhook or a public IP literal (high), a
/// private or local address (low), or nothing.
fn weigh_host(host: &str, rest: &str) -> Option<(Severity, String)> {
    let capture = CAPTURE_HOSTS
        .iter()
        .find(|s| host == **s || host.ends_with(&format!(".{s}")));
    if let Some(service) = capture {
        let why = format!(
            "{service} is a request-capture, paste or tunnel service used to collect stolen data"
        );
        return Some((Severity::High, why));
    }
    let host_path = format!("{host}{rest}");
    if let Some(service) = CAPTURE_PATHS.iter().find(|p| host_path.starts_with(**p)) {
        let why = format!("{service} is a chat webhook that posts whatever it receives");
        return Some((Severity::High, why));
    }
    match ip_literal(host) {
        Some(ip) if is_public(ip) => {
            let why = "a raw public IP address, where no documented service lives";
            return Some((Severity::High, why.to_owned()));
        }
        Some(_) => return Some((Severity::Low, "a private or loopback address".to_owned())),
        None => {}
    }
    let local = host == "localhost"
        || [".localhost", ".local", ".internal"]
            .iter()
            .any(|t| host.ends_with(t));
    local.then(|| (Severity::Low, "a local address".to_owned()))
}
