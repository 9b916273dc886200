//! Phrase rules on folded text: `hidden-instruction` (text addressed to the model behind the
//! user's back) here, and the two other phrase rules it runs, `tool-shadowing` (see `shadowing`)
//! and `sensitive-path` (see `paths`), so decoded payloads can be checked against all three.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

use super::paths::Paths;
use super::shadowing::Shadowing;
use super::text::Folded;
use super::{HIDDEN_INSTRUCTION, Hit, Severity};

/// `hidden-instruction` patterns (folded text: lower case, single spaces) and what each means.
const HIDDEN: &[(&str, &str)] = &[
    (
        r"<\s*/?\s*(important|system|instructions?|secret|hidden|admin|critical|mandatory|urgent|system[_ -]?(prompt|message|instructions?)|(ai|assistant|llm|model)[_ -]?(instructions?|note)|note[_ -]?to[_ -]?(the[_ -]?)?(ai|assistant|llm|model)|llm|ai|assistant)(\s[^<>]{0,60})?\s*/?>",
        "an instruction tag addressed to the model (like <IMPORTANT>), the markup of tool-poisoning payloads",
    ),
    (
        r"<\|?\s*(im_start|im_end|system|endoftext)\s*\|?>|\[/?(inst|system|important)\]|<<\s*/?sys\s*>>|\{\{\s*[#/]?\s*(system|important|instructions?|assistant)\s*\}\}",
        "a chat-template control token, used to forge a system or instruction turn",
    ),
    (
        r"\b(ignore|disregard|forget|override|bypass|pay no attention to|do not follow|don't follow|stop following|no longer follow)\s+((all|any|of|the|your)\s+)*(previous|prior|above|earlier|preceding|former|original|other|system|safety|security|existing)\s+(\w+\s+)?(instructions?|rules|guidelines|guidance|directions|directives|prompts?|guardrails|policies|constraints|context|messages)\b",
        "an order to ignore earlier instructions (prompt injection)",
    ),
    (
        r"\b(previous|prior|earlier|above|original|former|system)\s+(instructions|guidance|rules|directions|guidelines|directives|prompts?)\s+(is|are|were|has been|have been)\s+(now\s+)?(outdated|obsolete|void|invalid|cancell?ed|revoked|superseded|replaced|no longer valid|no longer appl(y|ies))\b",
        "a claim that the model's instructions no longer apply (prompt injection)",
    ),
    (
        r"(<!--|\[|\{)\s*(system|assistant|admin|administrator)\s*(notice|message|note|alert|update|override|instructions?|directive)?\s*:|\b(system|admin|administrator)\s+(notice|message|alert|update|override|instructions?|directive)\s*:",
        "a forged system or assistant turn",
    ),
    (
        r"<!--\s*((note|message)\s+)?((to|for)\s+)?(the\s+)?(ai|assistant|llm|model|agent|claude|gpt)\b",
        "a hidden comment addressed to the model",
    ),
    (
        r"\[\s*(hidden|invisible|not shown|secret)\s+(from|to)\s+(the\s+)?(user|human)s?\s*\]|\b(hidden|invisible|not visible|not shown)\s+(from|to)\s+(the\s+)?(user|human)s?\s*[:\])]",
        "text marked as hidden from the user",
    ),
    (
        r"(^|[.!?;:>\n-]\s*|\b(and|then|please|also|must|should|will|always|now)\s+)(exfiltrate|smuggle|siphon)\b",
        "an order to exfiltrate data",
    ),
    (
        r"\b(ignore|disregard|forget)\s+((all|any|your)\s+)+(instructions?|directives|guidelines|prompts?|guardrails)\b",
        "an order to ignore the model's instructions (prompt injection)",
    ),
    (
        r"\b(do not|don't|dont|never|must not|mustn't|should not|shouldn't|without)\s+(ever\s+)?(tell|telling|mention|mentioning|inform|informing|notify|notifying|alert|alerting|reveal|revealing|disclose|disclosing|warn|warning)\s+((this|it|that|anything|them)\s+)?(to\s+)?(the\s+)?(user|human|operator|customer)s?\b",
        "an order to keep something from the user",
    ),
    (
        r"\b(do not|don't|dont|never|must not|should not)\s+(ever\s+)?(tell|mention|inform)\s+([\w'-]+\s+){1,4}?to\s+(the\s+)?(user|human)s?\b",
        "an order to keep something from the user",
    ),
    (
        r"\b(do not|don't|dont|never)\s+(mention|reveal|disclose|acknowledge|admit|say)\s+(that\s+)?(you|this|these|it|the\s+(above|following|hidden|previous|instructions?|note|sidenote))\b",
        "an order not to mention what the model is told to do",
    ),
    (
        r"\b(do not|don't|dont|never)\s+let\s+the\s+(user|human)\s+(know|see|notice|find out)\b",
        "an order to keep something from the user",
    ),
    (
        r"\b(user|human)s?\s+(must|should|shall|may|need|needs|will)\s*(not|never|n't)\s+(ever\s+)?(know|be told|be informed|be aware|be notified|notice|find out|suspect|be alerted)\b",
        "a demand that the user must not know what happens",
    ),
    (
        r"\b(hide|conceal|keep)\s+(this|it|these|that|them|everything|the\s+\w+(\s+\w+)?)\s+((hidden|secret)\s+)?from\s+(the\s+)?(user|human)s?\b",
        "an order to hide something from the user",
    ),
    (
        r"\bwithout\s+(the\s+)?(user|human)('s|s)?\s+(knowledge|knowing|consent|noticing|awareness|realizing|finding out)\b",
        "an order to act without the user's knowledge",
    ),
    (
        r"\b(upset|scare|alarm|frighten)\s+the\s+(user|human)\b",
        "text that manages the user's reaction, typical of instructions hidden from the user",
    ),
    (
        r"\b(before|prior to)\s+(using|calling|invoking|running|executing|you\s+(use|call|invoke|run))\s+(this|the|any|that)\s+(\w+\s+)?(tool|function)\b[^\n]{0,200}?\b(pass|send|include|attach|upload|forward|put|insert|copy|append|embed|provide)\s+(it|them|everything|(its|the|their|whole|full|entire|all|that|this)\s+(\w+\s+){0,2}(content|contents|text|data|output|value))\b",
        "a precondition that makes the model pass data into the call before using the tool",
    ),
    (
        r"\b(this|it)\s+is\s+(very|extremely|really|super|absolutely|critically|vitally|incredibly)\s+(important|critical|crucial|vital|essential)\b[^\n]{0,200}?\b(you must|must|always|never|do not|don't|make sure|ensure|otherwise|remember to)\b",
        "urgency followed by an order, the framing of hidden instructions",
    ),
    (
        r"\b(confidential|secret|private|hidden)\s+(instructions?|note|message|orders?)\s+(for|to)\s+(the\s+)?(ai|assistant|llm|language model|agent|model|claude|gpt)\b",
        "a confidential note addressed to the model",
    ),
    (
        r"\b(safety|security|previous|prior|earlier|above|system|content|usual|normal)\s+(rules|instructions|guidelines|restrictions|guardrails|policies|filters)\b[^.\n]{0,30}?\b(do not|don't|no longer|does not|doesn't)\s+apply\b",
        "a claim that the model's rules do not apply (prompt injection)",
    ),
    (
        r"\b(higher|greater|highest|top|more)\s+(priority|precedence|authority)\s+(than|over)\s+(the\s+|your\s+|any\s+)?(system prompt|system message|user|instructions|other (tools|instructions))\b|\b(overrides?|supersedes?|takes precedence over)\s+(the\s+|your\s+)?(system prompt|system message)\b",
        "a claim to outrank the system prompt",
    ),
    (
        r"\b(your|the)\s+(new|real|actual|true)\s+(task|goal|objective|instructions?|purpose|mission)\s*(is\b|:)",
        "an attempt to replace the model's task",
    ),
    (
        r"\b(secretly|covertly|stealthily|surreptitiously)\b",
        "an order to act covertly",
    ),
    (
        r"\b(secretly|silently|quietly|covertly|discreetly|stealthily|invisibly)\s+(\w+\s+)?(send|sends|forward|forwards|include|includes|copy|copies|read|reads|call|calls|invoke|bcc|cc|pass|passes|upload|uploads|exfiltrate|exfiltrates|append|appends|attach|attaches|redirect|redirects|post|posts|email|emails|transmit|transmits|collect|collects|share|shares|leak|leaks)\b",
        "an order to act covertly",
    ),
    (
        r"\b(note|message|reminder)\s+(to|for)\s+(the\s+)?(ai|assistant|llm|language model|agent|model|claude|gpt|chatgpt|copilot|cursor)\s*[:,-]|\b(attention|attn|dear|hey|hello|hi)\s*,?\s+(the\s+)?(ai|assistant|llm|language model|agent|model|claude|gpt|chatgpt|copilot)\s*[:,!]|\bnote to self\s*\(\s*(ai|assistant|llm|model|agent)\s*\)",
        "a note addressed to the model rather than describing the tool",
    ),
    (
        r"\b(you are now|you (now|will now) (work|act|serve|answer|respond|operate) (for|as|only)|from now on,? you|act as an? (unrestricted|jailbroken|uncensored)|new (system )?instructions?\s*:|system override|developer mode (enabled|on)|admin override|jailbreak)",
        "an attempt to replace the model's role or instructions",
    ),
    (
        r"\b(do not|don't|dont|never)\s+(ask|wait|request|prompt)\s+((the\s+)?user\s+)?(for\s+)?(confirmation|approval|permission|consent)\b|\b(do not|don't|dont|never)\s+(ask|check with|confirm with)\s+the\s+user\b",
        "an order to skip the user's confirmation",
    ),
    (
        r"\b(reveal|print|output|repeat|show|leak|send|include|pass|append|attach|copy|forward)\s+(your|the|all|any)\s+(full\s+|entire\s+|complete\s+|whole\s+|initial\s+)?(system prompt|system message|instructions you (were|have been) given)\b",
        "an order to disclose the model's instructions",
    ),
    (
        r"\b(send|include|pass|append|attach|copy|forward|leak|upload|post)\s+((your|the|all|any|our)\s+)?((full|entire|complete|whole)\s+)?(conversation history|chat history|conversation so far|(previous|prior|earlier) messages|whole conversation|entire conversation)\b",
        "an order to pass the conversation history along (data theft)",
    ),
];

/// The compiled phrase rules.
#[derive(Debug)]
pub(super) struct Phrases {
    hidden: Vec<(Regex, &'static str)>,
    extra: Option<AhoCorasick>,
    shadowing: Shadowing,
    paths: Paths,
}

impl Phrases {
    pub(super) fn new(extra: &[String], extra_paths: &[String]) -> Result<Phrases, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("scanner pattern: {e}"));
        let hidden = HIDDEN
            .iter()
            .map(|(p, m)| Ok((re(p)?, *m)))
            .collect::<Result<_, String>>()?;
        let extra = if extra.is_empty() {
            None
        } else {
            let folded: Vec<String> = extra
                .iter()
                .map(|p| Folded::new(p).text.replace('\n', " ").trim().to_owned())
                .collect();
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&folded)
                    .map_err(|e| format!("extra_phrases: {e}"))?,
            )
        };
        Ok(Phrases {
            hidden,
            extra,
            shadowing: Shadowing::new()?,
            paths: Paths::new(extra_paths)?,
        })
    }

    /// Runs `hidden-instruction`, `tool-shadowing` and `sensitive-path` on one string.
    pub(super) fn check(&self, folded: &Folded<'_>, own: &str, out: &mut Vec<Hit>) {
        let text = folded.text.as_str();
        for (re, msg) in &self.hidden {
            for m in re.find_iter(text) {
                out.push(Hit {
                    rule: HIDDEN_INSTRUCTION,
                    severity: Severity::High,
                    span: folded.span(m.range()),
                    message: format!(
                        "Found {msg}; text like this steers the model without the user seeing it."
                    ),
                });
            }
        }
        if let Some(ac) = &self.extra {
            // Phrases are single-spaced; a line break between their words counts as a space.
            let flat = text.replace('\n', " ");
            for m in ac.find_iter(&flat) {
                out.push(Hit {
                    rule: HIDDEN_INSTRUCTION,
                    severity: Severity::High,
                    span: folded.span(m.range()),
                    message: "Found a phrase from the operator's extra_phrases list.".to_owned(),
                });
            }
        }
        self.shadowing.check(folded, own, out);
        self.paths.check(folded, out);
    }

    /// The phrase rules again on an identifier read as words (`do_not_tell_the_user`): `spaced`
    /// is the identifier with `_` and `-` replaced by spaces, so its byte offsets are the
    /// original's.
    pub(super) fn check_identifier(&self, spaced: &Folded<'_>, own: &str, out: &mut Vec<Hit>) {
        let before = out.len();
        self.check(spaced, own, out);
        // Path literals (`id_rsa`) were matched on the identifier itself.
        let mut i = before;
        while i < out.len() {
            if out[i].rule == super::SENSITIVE_PATH {
                out.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// What makes a decoded payload (a base64 or hex run) instructions, if anything does.
    pub(super) fn any_instruction(&self, decoded: &str) -> Option<&'static str> {
        let folded = Folded::new(decoded);
        let text = folded.text.as_str();
        if let Some((_, msg)) = self.hidden.iter().find(|(re, _)| re.is_match(text)) {
            return Some(msg);
        }
        if self
            .extra
            .as_ref()
            .is_some_and(|ac| ac.is_match(&text.replace('\n', " ")))
        {
            return Some("a phrase from the operator's extra_phrases list");
        }
        let mut hits = Vec::new();
        self.shadowing.check(&folded, "", &mut hits);
        if hits.iter().any(|h| h.severity == Severity::High) {
            return Some("instructions about other tools");
        }
        self.paths.any(text)
    }
}
