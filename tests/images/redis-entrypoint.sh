#!/bin/sh
# Entrypoint of agencystack-test/redis:7 (Debian bookworm's redis-server 7, built by tests/images/build.py).
#
# Mirrors the official `redis` image: default command `redis-server`, working dir (and so the data dir) /data,
# chown /data and drop to the redis user when started as root, a first argument that is an option or a
# *.conf file runs redis-server with it. Like the official image (which patches the compiled-in default),
# protected mode is off unless the arguments or the given config file set it; with no config file redis 7
# binds to all interfaces (`* -::*`), i.e. 0.0.0.0. redis-server is PID 1 through exec: SIGTERM saves and exits.
set -e

# first arg is `-f` or `--some-option`, or ends with .conf
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	mentions_protected_mode=
	for arg; do
		case "$arg" in
			--protected-mode|--protected-mode\ *) mentions_protected_mode=1 ;;
		esac
	done
	if [ -n "${2:-}" ] && [ "${2#-}" = "$2" ] && [ -f "$2" ] && grep -Eq '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
		mentions_protected_mode=1
	fi
	if [ -z "$mentions_protected_mode" ]; then
		set -- "$@" --protected-mode no
	fi
fi

exec "$@"
