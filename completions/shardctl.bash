# bash completion for shardctl(1): subcommands, their options, and the values
# of options that take a fixed set of words, a directory or a file.
#
# From a checkout:  source completions/shardctl.bash
# Installed:        /usr/share/bash-completion/completions/shardctl
#
# Keep in step with `shardctl COMMAND --help`: tests/integration/docs_test.cc
# fails when a command or an option is missing here.

_shardctl_commands="serve inc total counters reset status top stop bench cluster"
_shardctl_cluster_commands="init status move rebalance drain promote reshard"

# The options of each command ("cluster move" as cluster_move). The client
# commands share --url, --timeout, --json, --token-file and the TLS files
# (--cacert, --cert, --key); the cluster commands --etcd, --timeout, --json,
# the TLS files and (but reshard) --token-file.
_shardctl_global_options="--help -h --version --config"
_shardctl_tls_options="--cacert --cert --key"
_shardctl_client_options="--url --timeout --json --token-file $_shardctl_tls_options --help -h"
_shardctl_counter_options="--counter -k --window"
_shardctl_options_serve="--role --shards --port --shard-base-port --bind --shard-id --shard
  --shard-timeout --routing --threads --data-dir --in-memory --fsync --idempotency-window
  --token-file --daemon --pid-file --log-file --log-level --access-log --no-metrics --etcd --node-id
  --advertise --lease --ack --cors-origin --tls-cert --tls-key --tls-client-ca --cacert --cert --key
  --config --help -h"
_shardctl_options_inc="$_shardctl_counter_options --retries --idempotency-key --quiet -q --stdin $_shardctl_client_options"
_shardctl_options_total="$_shardctl_counter_options --per-shard --partial $_shardctl_client_options"
_shardctl_options_counters="--prefix --top --limit --after $_shardctl_client_options"
_shardctl_options_reset="--yes -y $_shardctl_client_options"
_shardctl_options_status="$_shardctl_client_options"
_shardctl_options_top="--interval -i --count -n --top $_shardctl_client_options"
_shardctl_options_stop="--pid-file --timeout --quiet -q --help -h"
_shardctl_options_bench="--connections -c --requests -n --duration -d --op --batch
  $_shardctl_counter_options $_shardctl_client_options"
_shardctl_etcd_options="--etcd --timeout --json --token-file $_shardctl_tls_options --help -h"
_shardctl_options_cluster="--help -h"
_shardctl_options_cluster_init="--shards --replicas $_shardctl_etcd_options"
_shardctl_options_cluster_status="$_shardctl_etcd_options"
_shardctl_options_cluster_move="--to --copy-timeout $_shardctl_etcd_options"
_shardctl_options_cluster_rebalance="--copy-timeout $_shardctl_etcd_options"
_shardctl_options_cluster_drain="--copy-timeout $_shardctl_etcd_options"
_shardctl_options_cluster_promote="--to $_shardctl_etcd_options"
_shardctl_options_cluster_reshard="--shards --data-dir --node-id --etcd --timeout --json
  $_shardctl_tls_options --help -h"

# Options that take a value (in the next word, or after "=").
_shardctl_value_options="--config --role --shards --port --shard-base-port --bind --shard-id
  --shard --shard-timeout --routing --threads --data-dir --fsync --idempotency-window
  --token-file --pid-file --log-file --log-level --url --timeout --counter -k --window
  --retries --idempotency-key --prefix --top --limit --after --connections -c --requests -n
  --interval -i --count
  --duration -d --op --batch --etcd --node-id --advertise --lease --ack --replicas --to
  --copy-timeout --cors-origin --tls-cert --tls-key --tls-client-ca --cacert --cert --key"

# Succeeds when the word $1 is one of the words in $2.
_shardctl_has() {
  local word
  for word in $2; do [[ $word == "$1" ]] && return 0; done
  return 1
}

# Sets COMPREPLY to the files (or, with -d, the directories) that start with
# $1, using bash-completion's _filedir when it is loaded.
_shardctl_files() {
  local cur=$1 only_dirs=$2
  if declare -F _filedir >/dev/null; then
    if [[ -n $only_dirs ]]; then _filedir -d; else _filedir; fi
    return
  fi
  compopt -o filenames 2>/dev/null
  if [[ -n $only_dirs ]]; then
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}

_shardctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev="" prefix=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()

  # "--fsync=al": bash splits it into "--fsync" "=" "al" when "=" is in
  # COMP_WORDBREAKS (the default), else it arrives as one word.
  if [[ $cur == "=" ]]; then
    cur=""
  elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  elif [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    prefix="$prev="
    cur=${cur#*=}
  fi

  # The subcommand: the first word that is neither an option nor an
  # option's value.
  local command="" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == --config ]]; then
      ((i++))
    elif [[ $word == --config=* || $word == -* ]]; then
      continue
    else
      command=$word
      break
    fi
  done
  # cluster's own subcommand follows it: the next word that is not an option
  # (cluster itself takes none but --help).
  local subcommand=""
  if [[ $command == cluster ]]; then
    for ((i++; i < COMP_CWORD; i++)); do
      word=${COMP_WORDS[i]}
      if [[ $word != -* ]]; then
        subcommand=$word
        break
      fi
    done
  fi

  # The value of an option.
  local words=""
  if [[ -n $prefix ]] || _shardctl_has "$prev" "$_shardctl_value_options"; then
    case $prev in
      --role) words="all shard aggregator" ;;
      --fsync) words="always everysec no" ;;
      --routing) words="value round-robin random" ;;
      --log-level) words="debug info warning error" ;;
      --op) words="inc total" ;;
      --ack) words="all primary" ;;
      --data-dir)
        _shardctl_files "$cur" dirs
        return
        ;;
      --config | --pid-file | --log-file | --token-file | --tls-cert | --tls-key | --tls-client-ca | --cacert | --cert | --key)
        _shardctl_files "$cur"
        return
        ;;
      *) return ;;  # a number, a URL, a name, a node id: nothing to offer
    esac
    mapfile -t COMPREPLY < <(compgen -P "$prefix" -W "$words" -- "$cur")
    return
  fi

  if [[ -z $command ]]; then
    if [[ $cur == -* ]]; then
      words=$_shardctl_global_options
    else
      words=$_shardctl_commands
    fi
  elif [[ $command == cluster && -z $subcommand ]]; then
    if [[ $cur == -* ]]; then
      words=$_shardctl_options_cluster
    else
      words=$_shardctl_cluster_commands
    fi
  else
    _shardctl_has "$command" "$_shardctl_commands" || return
    if [[ -n $subcommand ]]; then
      _shardctl_has "$subcommand" "$_shardctl_cluster_commands" || return
      command="${command}_$subcommand"
    fi
    local options_variable="_shardctl_options_${command}"
    words=${!options_variable}
    # inc VALUE, reset NAME, cluster move SHARD, cluster drain NODE and
    # cluster promote SHARD take a word of their own: offer options only once
    # one is begun with "-".
    if [[ $cur != -* ]] &&
      _shardctl_has "$command" "inc reset cluster_move cluster_drain cluster_promote"; then
      return
    fi
  fi
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}

complete -F _shardctl shardctl
