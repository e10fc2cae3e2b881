#!/bin/sh
# Refuse to start FreeRADIUS for Gatehouse without its settings, then run it.
#
#   check-env.sh                                 check only (systemd ExecStartPre)
#   check-env.sh freeradius -f -d /etc/gatehouse-radius   check, then exec the command
#
# FreeRADIUS turns an unset $ENV{NAME} into "" without a word, and both values
# are pasted into its configuration, so they are checked here: set, and made
# of characters that cannot break out of a quoted config string or be
# expanded as %{...} at request time.
set -eu

fail() {
	echo "gatehouse-radius: $*" >&2
	exit 1
}

token=${GATEHOUSE_RADIUS_TOKEN:-}
url=${GATEHOUSE_URL:-}

[ -n "$token" ] || fail "GATEHOUSE_RADIUS_TOKEN is empty or unset (a token of a client with scope access:check)"
case $token in
	*[!A-Za-z0-9._~+/=-]*) fail "GATEHOUSE_RADIUS_TOKEN has characters a bearer token never has" ;;
esac

case $url in
	http://?* | https://?*) ;;
	*) fail "GATEHOUSE_URL must start with http:// or https:// (got '$url')" ;;
esac
case $url in
	*/) fail "GATEHOUSE_URL must not end with / (got '$url')" ;;
	*[!][A-Za-z0-9.:/_~-]*) fail "GATEHOUSE_URL has characters outside A-Z a-z 0-9 . : / _ ~ - [ ] (got '$url')" ;;
esac

if [ $# -gt 0 ]; then
	# Run by hand as root (systemd's unit has RuntimeDirectory): the pid file's
	# directory, for the freerad user FreeRADIUS drops to.
	if [ "$(id -u)" = 0 ] && [ ! -d /run/freeradius ] && getent passwd freerad >/dev/null; then
		install -d -o freerad -g freerad -m 0775 /run/freeradius
	fi
	exec "$@"
fi
