//! Finding the backend that owns a resource URI (exact, collided, by template, or sole provider).

use super::View;

/// Where a resource request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRoute {
    pub backend: usize,
    /// The URI as the backend knows it.
    pub uri: String,
}

impl View {
    /// Routes a resource URI; `backend_names` maps indices to names for collided URIs.
    pub fn route_resource(&self, uri: &str, backend_names: &[&str]) -> Option<ResourceRoute> {
        if let Some(e) = self.resource(uri) {
            return Some(ResourceRoute {
                backend: e.backend,
                uri: e.original.clone(),
            });
        }
        if let Some(rest) = uri.strip_prefix("switchboard://") {
            let (name, original) = rest.split_once('/')?;
            let backend = backend_names.iter().position(|n| *n == name)?;
            return self.members.contains(&backend).then(|| ResourceRoute {
                backend,
                uri: original.to_string(),
            });
        }
        if let Some(t) = self
            .templates
            .iter()
            .find(|t| template_matches(&t.original, uri))
        {
            return Some(ResourceRoute {
                backend: t.backend,
                uri: uri.to_string(),
            });
        }
        let mut owners = self.members.iter().filter(|b| {
            self.resources.iter().any(|r| r.backend == **b)
                || self.templates.iter().any(|t| t.backend == **b)
        });
        match (owners.next(), owners.next()) {
            (Some(&only), None) => Some(ResourceRoute {
                backend: only,
                uri: uri.to_string(),
            }),
            _ => None,
        }
    }
}

/// Whether `uri` can be an expansion of an RFC 6570 template (literal parts in order).
pub(crate) fn template_matches(template: &str, uri: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        literals.push(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => rest = &rest[open + close + 1..],
            None => return false,
        }
    }
    let tail = rest;
    if literals.is_empty() {
        return template == uri;
    }
    let Some(mut remaining) = uri.strip_prefix(literals[0]) else {
        return false;
    };
    for lit in &literals[1..] {
        if lit.is_empty() {
            continue;
        }
        match remaining.find(lit) {
            Some(i) if i > 0 => remaining = &remaining[i + lit.len()..],
            _ => return false,
        }
    }
    !remaining.is_empty() && remaining.ends_with(tail) && remaining.len() > tail.len()
}

#[cfg(test)]
mod tests {
    use super::template_matches;

    #[test]
    fn template_matching_requires_literals_in_order_and_nonempty_vars() {
        assert!(template_matches(
            "test://template/{id}/data",
            "test://template/42/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template//data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://other/42/data"
        ));
        assert!(template_matches("note://{id}", "note://7"));
        assert!(!template_matches("note://{id}", "note://"));
        assert!(template_matches("file:///{path}", "file:///etc/hosts"));
    }
}
