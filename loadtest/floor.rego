# One argument rule for the floor measurement (loadtest/floor-auth.sh): echo's text must not
# carry a password.
package switchboard

import rego.v1

default decision := {"allow": true, "reason": "allowed"}

decision := {"allow": false, "reason": "no passwords in echo"} if {
	input.tool == "echo"
	contains(lower(input.arguments.text), "password")
}
