#!/usr/bin/env bash
# A process tree like a build's: a shell loop spawning short commands (fork+exec each),
# pipelines and subshells. 146 rounds of 4 processes plus the shell: 585 processes.
for i in $(seq 146); do
  /bin/true
  echo "$i" | /bin/cat >/dev/null
  (/bin/true)
done
