//! Secrets: tokens and passwords that must never reach any output.
//!
//! A [`Secret`] prints only a short prefix. Every secret ci-doctor reads is also registered
//! here, so that text built from other sources (an error from a library, a URL with
//! credentials, a log line) can be scrubbed with [`redact`] before it is shown.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::{Serialize, Serializer};

/// Token prefixes GitLab uses, longest first so that `glrtr-` wins over `glrt-`.
const PREFIXES: &[&str] = &[
    "GR1348941", "glrtr-", "glrt-", "glpat-", "glcbt-", "gldt-", "glptt-", "gloas-", "glagent-",
    "glsoat-", "glffct-", "glft-", "glimt-", "glwt-",
];

/// Characters shown after the prefix.
const SHOWN: usize = 4;


/// A token or password. `Debug`, `Display` and `Serialize` all print the short form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value` and registers it for [`redact`].
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The secret itself, for the one place that sends it to its own host.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The kind of token this is, judged by its prefix.
    pub fn kind(&self) -> TokenKind {
        TokenKind::of(&self.0)
    }

    /// The short form: a GitLab token's prefix and at most four more characters, then `…`.
    pub fn short(&self) -> String {
        shorten(&self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.short())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.short())
    }
}

/// What a token is, judged by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenKind {
    /// `glrt-`: authentication token of a runner created in the UI or API.
    RunnerAuthentication,
    /// `glrtr-`: authentication token of a runner registered with a registration token.
    RunnerRegistered,
    /// `GR1348941`: a registration token, which only `POST /runners` accepts.
    Registration,
    /// `glpat-`: a personal, project or group access token.
    PersonalAccess,
    /// Another `gl…-` token kind (job, deploy, trigger, ...).
    OtherGitLab,
    /// No known prefix: an authentication token from an older GitLab, or anything else.
    Unprefixed,
}

impl TokenKind {
    /// Classifies `token`; an administrator-chosen instance prefix (`acme-glrt-…`) is skipped.
    pub fn of(token: &str) -> TokenKind {
        let token = token.trim();
        let bare = strip_instance_prefix(token);
        if bare.starts_with("glrtr-") {
            TokenKind::RunnerRegistered
        } else if bare.starts_with("glrt-") {
            TokenKind::RunnerAuthentication
        } else if token.starts_with("GR1348941") {
            TokenKind::Registration
        } else if bare.starts_with("glpat-") {
            TokenKind::PersonalAccess
        } else if PREFIXES.iter().any(|prefix| bare.starts_with(prefix)) {
            TokenKind::OtherGitLab
        } else {
            TokenKind::Unprefixed
        }
    }

    /// A short noun phrase for messages.
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::RunnerAuthentication => "a runner authentication token (`glrt-`)",
            TokenKind::RunnerRegistered => "a runner authentication token from the registration-token flow (`glrtr-`)",
            TokenKind::Registration => "a registration token (`GR1348941`)",
            TokenKind::PersonalAccess => "a personal, project or group access token (`glpat-`)",
            TokenKind::OtherGitLab => "a GitLab token that is not a runner token",
            TokenKind::Unprefixed => "a token without a known prefix",
        }
    }
}

/// Skips an instance prefix such as `acme-` in front of `glrt-`.
fn strip_instance_prefix(token: &str) -> &str {
    for marker in ["glrtr-", "glrt-", "glpat-"] {
        if let Some(at) = token.find(marker) {
            let head = &token[..at];
            if at > 0 && head.ends_with('-') && head[..head.len() - 1].chars().all(|c| c.is_ascii_alphanumeric()) {
                return &token[at..];
            }
        }
    }
    token
}

/// The short form of any secret string: a GitLab token's prefix and four more characters, or
/// only `…` for anything else.
pub fn shorten(value: &str) -> String {
    let value = value.trim();
    let bare = strip_instance_prefix(value);
    let instance = &value[..value.len() - bare.len()];
    let prefix = PREFIXES.iter().find(|prefix| bare.starts_with(*prefix)).copied().unwrap_or("");
    let rest = &bare[prefix.len()..];
    // Without a known prefix the value may be a password, of which no character is shown.
    if prefix.is_empty() {
        return "…".to_string();
    }
    let shown: String = rest.chars().take(SHOWN).collect();
    format!("{instance}{prefix}{shown}…")
}

/// The registered secrets, and a matcher over all of them built when first needed: a config
/// with hundreds of entries registers hundreds of tokens, and a report is scanned once, not once
/// per token.
#[derive(Default)]
struct Registry {
    secrets: Vec<String>,
    matcher: Option<aho_corasick::AhoCorasick>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

/// Registers a secret value so that [`redact`] removes it from any text.
pub fn register(value: &str) {
    let value = value.trim();
    // Very short values would match ordinary words; they are not tokens worth protecting
    // this way and a Secret never prints them anyway.
    if value.len() < 6 {
        return;
    }
    let mut registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !registry.secrets.iter().any(|known| known == value) {
        registry.secrets.push(value.to_string());
        registry.matcher = None;
    }
}

/// Registers every secret found in raw config text, whether or not it parses: values of
/// credential keys (`token = "…"`, `password = '…'`) and any word with a GitLab token prefix.
/// A config with a syntax error must not leak its tokens through the error's snippet.
pub fn register_in_text(text: &str, credential_keys: &[&str]) {
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim().trim_matches(['"', '\'']).rsplit('.').next().unwrap_or("").to_ascii_lowercase();
            if credential_keys.contains(&key.as_str()) {
                let value = value.trim();
                let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
                let inner = match quote {
                    Some(quote) => value[1..].split(quote).next().unwrap_or(""),
                    None => value.split(['#', ' ']).next().unwrap_or(""),
                };
                register(inner);
            }
        }
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).filter(|word| word.len() > 12) {
            let bare = strip_instance_prefix(word);
            if PREFIXES.iter().any(|prefix| bare.starts_with(prefix)) {
                register(word);
            }
        }
    }
}

/// Replaces every registered secret in `text` by its short form. Where secrets overlap, the
/// longest wins, so that a secret containing another is replaced whole.
pub fn redact(text: &str) -> String {
    let mut registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if registry.secrets.is_empty() {
        return text.to_string();
    }
    if registry.matcher.is_none() {
        let built = aho_corasick::AhoCorasick::builder().match_kind(aho_corasick::MatchKind::LeftmostLongest).build(&registry.secrets);
        match built {
            Ok(matcher) => registry.matcher = Some(matcher),
            // Building fails only past the crate's size limits; hide the whole text rather
            // than risk showing a secret.
            Err(_) => return "…".to_string(),
        }
    }
    let Registry { secrets, matcher } = &*registry;
    let matcher = matcher.as_ref().expect("built above");
    let mut out = String::with_capacity(text.len());
    matcher.replace_all_with(text, &mut out, |found, _, out| {
        out.push_str(&shorten(&secrets[found.pattern().as_usize()]));
        true
    });
    out
}

/// Removes a password from the user-info part of a URL (`https://user:pass@host`), registering
/// it as a secret, and returns the URL as it may be shown.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact(url);
    };
    if let Some(password) = parsed.password().map(str::to_string) {
        register(&password);
        // Replace the password in the text as written; the URL type would percent-encode `…`.
        let shown = url.replacen(&format!(":{password}@"), ":…@", 1);
        let _ = parsed.set_password(None);
        return redact(&shown);
    }
    redact(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_token_shows_prefix_and_four_characters() {
        let secret = Secret::new("glrt-FAKEc01q7Lm2Vx9Rt4Bn");
        assert_eq!(secret.to_string(), "glrt-FAKE…");
        assert_eq!(format!("{secret:?}"), "Secret(glrt-FAKE…)");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"glrt-FAKE…\"");
    }

    #[test]
    fn token_kinds_follow_prefixes() {
        assert_eq!(TokenKind::of("glrt-abc"), TokenKind::RunnerAuthentication);
        assert_eq!(TokenKind::of("glrt-t1_abc"), TokenKind::RunnerAuthentication);
        assert_eq!(TokenKind::of("acme-glrt-abc"), TokenKind::RunnerAuthentication);
        assert_eq!(TokenKind::of("glrtr-abc"), TokenKind::RunnerRegistered);
        assert_eq!(TokenKind::of("GR1348941abcdef"), TokenKind::Registration);
        assert_eq!(TokenKind::of("glpat-abcdef"), TokenKind::PersonalAccess);
        assert_eq!(TokenKind::of("gldt-abcdef"), TokenKind::OtherGitLab);
        assert_eq!(TokenKind::of("a1b2c3d4e5f6a7b8c9d0"), TokenKind::Unprefixed);
    }

    #[test]
    fn short_secrets_are_hidden_entirely() {
        assert_eq!(shorten("hunter2"), "…");
        assert_eq!(shorten("a1b2c3d4e5f6a7b8c9d0"), "…");
        assert_eq!(shorten("acme-glrt-XYZW1234"), "acme-glrt-XYZW…");
    }

    #[test]
    fn redact_replaces_registered_secrets() {
        register("glpat-FAKEredact0123456789");
        let text = "sent glpat-FAKEredact0123456789 to the server";
        assert_eq!(redact(text), "sent glpat-FAKE… to the server");
    }

    #[test]
    fn a_secret_holding_another_is_replaced_whole() {
        register("FAKEnested0123456789");
        register("glpat-FAKEnested0123456789");
        assert_eq!(redact("a glpat-FAKEnested0123456789 and FAKEnested0123456789"), "a glpat-FAKE… and …");
    }

    #[test]
    fn secrets_in_unparsable_text_are_found() {
        register_in_text("[[runners]]\n  name = \"broken\n  token = \"glrt-FAKEunparsed99887766\"\n  password = 'hunter2hunter2'\n", &["token", "password"]);
        assert!(!redact("glrt-FAKEunparsed99887766").contains("unparsed"));
        assert_eq!(redact("hunter2hunter2"), "…");
    }

    #[test]
    fn url_password_is_removed() {
        let shown = redact_url("https://deploy:s3cretpassw0rd@gitlab.example.test/");
        assert_eq!(shown, "https://deploy:…@gitlab.example.test/");
        assert!(redact("s3cretpassw0rd").len() < "s3cretpassw0rd".len());
    }
}
