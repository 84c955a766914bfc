#!/usr/bin/env bash
# deploy/local/status.sh: the production topology on one machine (see stack.sh for every setting).
exec bash "$(dirname "${BASH_SOURCE[0]}")/stack.sh" status "$@"
