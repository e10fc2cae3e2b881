#!/bin/sh
# OpenVPN client-connect hook: let a client in only when Gatehouse allows the
# common name of its certificate to use the VPN now.
#
#   server.conf:  script-security 2
#                 setenv GATEHOUSE_URL https://gatehouse.example.com
#                 setenv GATEHOUSE_TOKEN_FILE /etc/openvpn/gatehouse/token
#                 client-connect /etc/openvpn/gatehouse/client-connect.sh
#
# Settings (environment; OpenVPN passes its setenv values to scripts):
#   GATEHOUSE_URL         base URL, no trailing slash (required)
#   GATEHOUSE_TOKEN_FILE  file holding a bearer token with scope access:check (required)
#   GATEHOUSE_RESOURCE    resource key to ask about (default: vpn)
#   GATEHOUSE_TIMEOUT     seconds for the whole call (default: 5); OpenVPN waits
#                         for this script before it serves anyone else
#   GATEHOUSE_CA_FILE     CA bundle for an https URL (default: the system's)
#
# Exit 0 only on HTTP 200 whose body says "allow": true; 1 on a deny; 2 on
# anything else (bad setting or name, timeout, service down, odd answer).
# Every run writes one line to stderr, which OpenVPN puts in its log.
set -u

# OpenVPN runs scripts with an almost empty environment (no PATH).
PATH=/usr/local/bin:/usr/bin:/bin
export PATH

cn=${common_name:-}
resource=${GATEHOUSE_RESOURCE:-vpn}
timeout=${GATEHOUSE_TIMEOUT:-5}

say() {
	echo "gatehouse client-connect: $*" >&2
}

refuse() {
	say "refused cn=$cn: $*"
	exit 2
}

# The name goes into a JSON string unescaped, so only characters that need no
# escaping pass (a user name or e-mail address), at most 128 of them. The same
# rule as the RADIUS name guard (deploy/radius/policy.d/gatehouse).
valid_name() {
	case $1 in
		'' | *[!A-Za-z0-9._@+-]*) return 1 ;;
	esac
	[ "${#1}" -le 128 ]
}

valid_name "$cn" || {
	cn=$(printf '%s' "$cn" | tr -c 'A-Za-z0-9._@+-' '?' | cut -c1-64)  # loggable
	refuse "common name empty, too long or with characters outside A-Z a-z 0-9 . _ @ + -"
}
valid_name "$resource" || refuse "GATEHOUSE_RESOURCE is not a plain key"
case $timeout in
	'' | *[!0-9]*) refuse "GATEHOUSE_TIMEOUT must be whole seconds" ;;
esac

url=${GATEHOUSE_URL:-}
case $url in
	http://?* | https://?*) ;;
	*) refuse "GATEHOUSE_URL must start with http:// or https://" ;;
esac

token_file=${GATEHOUSE_TOKEN_FILE:-}
[ -n "$token_file" ] && [ -r "$token_file" ] || refuse "GATEHOUSE_TOKEN_FILE is unset or unreadable"
token=$(cat "$token_file") || refuse "cannot read $token_file"
case $token in
	'' | *[!A-Za-z0-9._~+/=-]*) refuse "$token_file does not hold a bearer token" ;;
esac

ca_option=
if [ -n "${GATEHOUSE_CA_FILE:-}" ]; then
	ca_option="--cacert=$GATEHOUSE_CA_FILE"
fi

# The token travels on stdin (-H @-), never on the command line where ps shows
# it. -q first: ignore any ~/.curlrc. No redirects, http(s) only. Quiet: the
# exit status says what went wrong, and this script logs one line.
answer=$(printf 'Authorization: Bearer %s\n' "$token" | curl -q --silent \
	--proto '=http,https' --max-redirs 0 --max-time "$timeout" --connect-timeout "$timeout" \
	${ca_option:+"$ca_option"} \
	-H @- -H 'Content-Type: application/json' -H 'Accept: application/json' \
	--data-binary "{\"user\": \"$cn\", \"resource\": \"$resource\"}" \
	--write-out '\n%{http_code}' \
	"$url/api/v1/access/check")
status=$?
case $status in
	0) ;;
	6) refuse "Gatehouse unreachable: cannot resolve the host of GATEHOUSE_URL" ;;
	7) refuse "Gatehouse unreachable: connection refused" ;;
	28) refuse "Gatehouse unreachable: no answer within ${timeout}s" ;;
	35 | 51 | 58 | 60 | 77) refuse "Gatehouse unreachable: TLS failed (curl exit $status)" ;;
	*) refuse "Gatehouse unreachable (curl exit $status)" ;;
esac

code=$(printf '%s\n' "$answer" | tail -n 1)
body=$(printf '%s\n' "$answer" | sed '$d')
decision=$(printf '%s\n' "$body" | sed -n 's/.*"decision_id" *: *\([0-9][0-9]*\).*/\1/p')
# Every reason's text, joined with "; " (one reason object per line after the
# split on "{"; a text is cut at its first escaped character, enough for a log).
reason=$(printf '%s\n' "$body" | tr '{' '\n' | sed -n 's/.*"text" *: *"\([^"\\]*\).*/\1/p' |
	awk 'NR > 1 { printf "; " } { printf "%s", $0 }')

# In JSON a quote inside a string is escaped, so an unescaped "allow" can only
# be the key itself.
if [ "$code" = 200 ] && printf '%s\n' "$body" | grep -Eq '"allow"[[:space:]]*:[[:space:]]*true([^A-Za-z]|$)'; then
	say "allowed cn=$cn resource=$resource decision=$decision"
	exit 0
fi
if [ "$code" = 200 ] && printf '%s\n' "$body" | grep -Eq '"allow"[[:space:]]*:[[:space:]]*false([^A-Za-z]|$)'; then
	say "denied cn=$cn resource=$resource decision=$decision: $reason"
	exit 1
fi
refuse "no decision from Gatehouse (HTTP $code${reason:+: $reason})"
