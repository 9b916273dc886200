# "alice may call github__open_pr only for repos in org acme."
#
# Evaluated by the gateway's `rego` stage for every call (see docs/policy.md for the input
# document). It answers data.switchboard.decision = {allow, reason}; the reason of a refusal is
# what the client is told ("Denied by policy: <reason>", rule rego:deny). Calls this policy does
# not speak about are allowed here: which backends and tools a principal may see and call at all
# is the rbac stage's job.
package switchboard

import rego.v1

default decision := {"allow": true, "reason": "not governed by this policy"}

# Opening a pull request on github (the backend's own tool name, whatever the client sees).
decision := open_pr if {
	input.backend == "github"
	input.tool == "open_pr"
}

default open_pr := {"allow": false, "reason": "open_pr needs a repo argument of the form org/name"}

open_pr := {"allow": false, "reason": "only alice may open pull requests"} if {
	input.principal.subject != "alice"
}

open_pr := {"allow": true, "reason": "alice may open pull requests in acme"} if {
	input.principal.subject == "alice"
	org == "acme"
}

open_pr := {"allow": false, "reason": sprintf("alice may open pull requests only in org acme, not in %q", [org])} if {
	input.principal.subject == "alice"
	org != "acme"
}

# The org of `repo` ("acme/x" → "acme"); undefined when repo is not a string with an org part.
org := parts[0] if {
	is_string(input.arguments.repo)
	parts := split(input.arguments.repo, "/")
	count(parts) == 2
	parts[0] != ""
	parts[1] != ""
}
