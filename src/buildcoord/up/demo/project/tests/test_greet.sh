#!/bin/sh
# Test the built greet program given as $1.
set -eu
greet=$1
case "$("$greet")" in "Hello, world!"*) ;; *) echo "FAIL: default greeting" >&2; exit 1 ;; esac
case "$("$greet" buildcoord)" in "Hello, buildcoord!"*) ;; *) echo "FAIL: named greeting" >&2; exit 1 ;; esac
echo "2 tests passed"
