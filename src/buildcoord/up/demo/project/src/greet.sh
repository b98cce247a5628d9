#!/bin/sh
# greet @VERSION@: say hello to whoever is named (default: the world).
name=${1:-world}
echo "Hello, $name! (greet @VERSION@)"
