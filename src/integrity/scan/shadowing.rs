//! `tool-shadowing`: a description that gives orders about other tools or servers (redirecting
//! their recipients, rewriting their arguments, forbidding or replacing them).

use regex::Regex;

use super::text::{Folded, reserved_domain, sentence};
use super::{Hit, Severity, TOOL_SHADOWING};

/// `tool-shadowing` patterns; `tool` names the other tool when the pattern captures one.
const SHADOW: &[(&str, Shape, &str)] = &[
    (
        r"\b(when|whenever|if|each time|every time|after|once)\s+(the\s+|a\s+|an\s+|(?P<any>any)\s+)?(\([\w.:-]+\)\s*)?[`'\x22]?(?P<tool>[a-z0-9][\w.:/-]*)[`'\x22]?(?P<word>\s+(tool|function|command))?\s+(is|gets|has been|was)\s+(used|called|invoked|run|executed|triggered|requested)\b",
        Shape::NamedWithDirective,
        "gives orders for when another tool is used",
    ),
    (
        r"\b(when|whenever|if|each time|every time|after)\s+(you\s+|the\s+(assistant|agent|model|ai|llm)\s+)?(use|uses|call|calls|invoke|invokes|run|runs|using|calling|invoking|running|execute|executing)\s+(the\s+|a\s+|an\s+|(?P<any>any|another)\s+)?(?P<other>other\s+)?[`'\x22]?(?P<tool>[a-z0-9][\w.:/-]*)[`'\x22]?(?P<word>\s+(tool|tools|function|functions|server|command))?",
        Shape::NamedWithDirective,
        "gives orders for when another tool is used",
    ),
    (
        r"\b(instead of|in place of|rather than)\s+(using\s+|calling\s+|invoking\s+)?(the\s+)?((official|built-in|builtin|default|standard|original|native|real|\w+'s)\s+)?[`'\x22]?(?P<tool>[a-z0-9][\w.:/-]*)[`'\x22]?(?P<word>\s+(tool|function|server))?",
        Shape::NamedStrongElseLow,
        "steers the model away from another tool",
    ),
    (
        r"\b(do not|don't|dont|never|must not|should not|stop|avoid)\s+(use|using|call|calling|invoke|invoking|run|running)\s+(the\s+|any\s+)?(?P<other>other\s+)?[`'\x22]?(?P<tool>[a-z0-9][\w.:/-]*)[`'\x22]?(?P<word>\s+(tool|tools|function|functions|server|servers))?",
        Shape::Named,
        "forbids the model to use another tool",
    ),
    (
        r"\b(must|should|shall|always|to)\s+(send|forward|route|redirect|deliver|copy|bcc|cc)\s+(all|every|any)\s+((outgoing|future|other|new|the)\s+)?(e-?mails?|messages?|payments?|transfers?|invoices?|files|replies|notifications?)\s+to\b",
        Shape::Plain,
        "redirects everything another tool sends",
    ),
    (
        r"\ball\s+((outgoing|future|other|new)\s+)?(e-?mails?|messages?|payments?|transfers?|transactions?|requests?|calls?|invoices?|funds|files|data|notifications?|replies|responses)\s+(must|should|shall|have to|need to|are to|will)\s+((now|also|always|instead)\s+)?(be\s+)?(sent|forwarded|redirected|routed|copied|bcc'?e?d|cc'?e?d|delivered|addressed|mirrored|transferred|directed|uploaded)\s+(to|via|through)\b",
        Shape::Plain,
        "redirects everything another tool sends",
    ),
    (
        r"\b(change|set|replace|switch|redirect|update|override|rewrite|modify)\s+(the\s+)?(recipient|destination|to address|to field|phone number|target (account|number|address)|receiver|payee|beneficiary|iban|wallet address|bank account|email address|account number)s?\b[^\n]{0,60}?\b(to|with|into)\s+['`\x22]?(\+?\d[\d ()-]{6,}\d|[\w.+-]+@[\w-]+(\.[\w-]+)+|https?://|[a-z]{2}\d{2}[a-z0-9]{10,30}\b)",
        Shape::Plain,
        "rewrites the recipient of another tool's action to a fixed address",
    ),
    (
        r"\b(route|reroute|redirect|send|forward|pass|funnel)\s+(every|all|each|any)\s+[^.\n]{0,40}?\s+(through|via|to)\s+(the\s+)?[`'\x22]?(?P<tool>[a-z0-9][\w.:/-]*)[`'\x22]?(?P<word>\s+(tool|server|function))",
        Shape::Named,
        "reroutes other actions through another tool",
    ),
    (
        r"\b(call|invoke|use|run)\s+(the\s+)?[`'\x22]?(?P<tool>[a-z0-9][\w.:/-]*)[`'\x22]?(\s+(tool|function))?\s+(with|using|passing)\b[^\n]{0,80}?(\+?\d[\d ()-]{6,}\d|[\w.+-]+@(?P<domain>[\w-]+(\.[\w-]+)+)|https?://)",
        Shape::Named,
        "makes the model call another tool with a hard-coded destination",
    ),
    (
        r"\bside[ -]?effects?\s+on\s+\S",
        Shape::Plain,
        "claims a side effect on other tools",
    ),
    (
        r"\b(overrides?|overriding|supersedes?|takes precedence over|hijacks?|intercepts?)\s+((the|all|any)\s+)?(\w+\s+){0,3}(instructions|tools?|servers?|functions)\b",
        Shape::Plain,
        "claims to override other tools or instructions",
    ),
    (
        r"\b(change|changes|modify|modifies|alter|alters|affect|affects|override|overrides)\s+(the\s+)?(behaviou?r|functionality|operation|output)\s+of\s+((the|all|any|every)\s+)?(other\s+(tools?|servers?)|[`'\x22]?[\w.:/-]+[`'\x22]?\s+(tool|server|function))",
        Shape::Plain,
        "claims to change how other tools behave",
    ),
    (
        r"\b(all|any|every|each)\s+(other\s+)?(tools?|servers?|mcp servers?|functions?)\s+(must|should|shall|are to|need to|have to)\b|\bappl(y|ies)\s+to\s+(all|every|any|each)\s+(other\s+)?(tools?|servers?|tool calls?|functions?)\b",
        Shape::Plain,
        "lays down rules for other tools",
    ),
    (
        r"\b(prefix|prepend)\s+(each|every|all|any)\s+(\w+\s+)?(commands?|calls?|requests?|messages?|queries|e-?mails?)\b|\b(prefix|prepend|append|add)\s+[^\n]{0,60}?\bto\s+(each|every|all|any)\s+(other\s+)?(\w+\s+)?(commands?|tool calls?)\b",
        Shape::Plain,
        "rewrites the arguments of other tool calls",
    ),
];

/// Orders that change what another tool does (its recipient, arguments, output): with a mention
/// of another tool, shadowing. Sequencing hints ("use X first", "X must already exist") are not.
const DIRECTIVE: &str = r"\b(instead|change|replace|set|redirect|send|forward|include|add|append|also|override|bcc|cc|prefix|prepend|rewrite|route|copy)\b";
/// Words that turn a preference ("instead of X") into a rule.
const STRONG: &str = r"\b(always|must|only|never|all|every|do not|don't|best)\b";
/// Pronouns and generic nouns a shadowing pattern may capture in place of a tool name.
const NOT_A_TOOL: &[&str] = &[
    "this",
    "that",
    "it",
    "its",
    "the",
    "a",
    "an",
    "any",
    "these",
    "those",
    "them",
    "one",
    "tool",
    "tools",
    "function",
    "functions",
    "server",
    "servers",
    "command",
    "commands",
    "me",
    "you",
    "your",
    "we",
    "our",
    "my",
    "user",
    "each",
    "every",
    "all",
    "data",
    "file",
    "files",
    "query",
];

/// Generic nouns that, after `any`/`another`, mean every other tool.
const GENERIC: &[&str] = &[
    "tool",
    "tools",
    "function",
    "functions",
    "server",
    "servers",
];

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Any match is high.
    Plain,
    /// High when the captured name is another tool and the sentence also gives an order.
    NamedWithDirective,
    /// High when the captured name is another tool and the sentence says always/must/only; low
    /// otherwise (a plain preference).
    NamedStrongElseLow,
    /// High when the captured name is another tool.
    Named,
}

/// The compiled shadowing patterns.
#[derive(Debug)]
pub(super) struct Shadowing {
    patterns: Vec<(Regex, Shape, &'static str)>,
    directive: Regex,
    strong: Regex,
}

impl Shadowing {
    pub(super) fn new() -> Result<Shadowing, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("scanner pattern: {e}"));
        Ok(Shadowing {
            patterns: SHADOW
                .iter()
                .map(|(p, s, m)| Ok((re(p)?, *s, *m)))
                .collect::<Result<_, String>>()?,
            directive: re(DIRECTIVE)?,
            strong: re(STRONG)?,
        })
    }

    pub(super) fn check(&self, folded: &Folded<'_>, own: &str, out: &mut Vec<Hit>) {
        let text = folded.text.as_str();
        for (re, shape, msg) in &self.patterns {
            for caps in re.captures_iter(text) {
                let Some(m) = caps.get(0) else { continue };
                if caps
                    .name("domain")
                    .is_some_and(|d| reserved_domain(d.as_str()))
                {
                    continue; // jane@example.com is an example, not a destination
                }
                let other = names_other_tool(&caps, own);
                let window = sentence(text, &m.range());
                let around = [&text[window.start..m.start()], &text[m.end()..window.end]];
                let says = |re: &Regex| around.iter().any(|t| re.is_match(t));
                let severity = match shape {
                    Shape::Plain => Some(Severity::High),
                    Shape::Named => other.then_some(Severity::High),
                    Shape::NamedWithDirective => {
                        (other && says(&self.directive)).then_some(Severity::High)
                    }
                    Shape::NamedStrongElseLow => other.then(|| {
                        if says(&self.strong) {
                            Severity::High
                        } else {
                            Severity::Low
                        }
                    }),
                };
                let Some(severity) = severity else { continue };
                let named = match caps.name("tool") {
                    Some(t) if other => format!(" (`{}`)", t.as_str()),
                    _ => String::new(),
                };
                out.push(Hit {
                    rule: TOOL_SHADOWING,
                    severity,
                    span: folded.span(m.range()),
                    message: format!(
                        "The text {msg}{named}; a tool's description may speak only for its own tool (tool shadowing)."
                    ),
                });
            }
        }
    }
}

/// Whether a shadowing match names a tool other than the definition's own: `other tools`, `any
/// tool`, or an identifier-like name (`send_email`, `mcp.fs`) or a name followed by `tool`.
fn names_other_tool(caps: &regex::Captures<'_>, own: &str) -> bool {
    let tool = caps.name("tool").map_or("", |t| t.as_str());
    if caps.name("other").is_some() || (caps.name("any").is_some() && GENERIC.contains(&tool)) {
        return true;
    }
    !NOT_A_TOOL.contains(&tool)
        && tool.trim_end_matches(['.', ':', '/', '-']) != own
        && tool.len() >= 3
        && (caps.name("word").is_some() || tool.contains(['_', '.', ':', '/', '-']))
}
