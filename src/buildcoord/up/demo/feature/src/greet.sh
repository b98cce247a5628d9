#!/bin/sh
# greet @VERSION@: say hello to whoever is named (default: the world), with printf only.
printf 'Hello, %s! (greet @VERSION@, faster)\n' "${1:-world}"
