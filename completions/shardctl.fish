# fish completion for shardctl(1): subcommands, their options, and the values
# of options that take a fixed set of words, a directory or a file.
#
# From a checkout:  source completions/shardctl.fish
# Installed:        /usr/share/fish/vendor_completions.d/shardctl.fish
#
# Keep in step with `shardctl COMMAND --help`: tests/integration/docs_test.cc
# fails when a command or an option is missing here.

set -l commands serve inc total counters reset status top stop bench cluster
set -l clients inc total counters reset status top bench
set -l cluster_commands init status move rebalance drain promote reshard

# No file names where none are wanted: options that take files say so.
complete -c shardctl -f

# The subcommands, until one is given.
set -l none "not __fish_seen_subcommand_from $commands"
complete -c shardctl -n $none -a serve -d 'Run the shards and the aggregator'
complete -c shardctl -n $none -a inc -d 'Add VALUE to a counter (negative subtracts)'
complete -c shardctl -n $none -a total -d "Print a counter's total over every shard"
complete -c shardctl -n $none -a counters -d 'List counters and their totals, or the top K'
complete -c shardctl -n $none -a reset -d 'Set a counter to 0 on every shard'
complete -c shardctl -n $none -a status -d 'Show every shard: up or down, last error, count'
complete -c shardctl -n $none -a top -d 'Watch the service: increments/s, latency, shards, busiest counters'
complete -c shardctl -n $none -a stop -d 'Stop a running serve and wait until it has exited'
complete -c shardctl -n $none -a bench -d 'Load the server from many connections and measure it'
complete -c shardctl -n $none -a cluster -d 'Make a cluster in etcd and move its shards between nodes'

# Global options; --help works after every subcommand too.
complete -c shardctl -s h -l help -d 'Print help and exit'
complete -c shardctl -n $none -l version -d 'Print the version and exit'
complete -c shardctl -n "$none; or __fish_seen_subcommand_from serve" -l config -r -F -d "Read serve's options from this TOML file"

# serve
set -l serve "__fish_seen_subcommand_from serve"
complete -c shardctl -n $serve -l role -x -a 'all shard aggregator' -d 'What this process runs'
complete -c shardctl -n $serve -l shards -x -d 'Number of shards'
complete -c shardctl -n $serve -l port -x -d "The aggregator's port, or the shard's with --role shard"
complete -c shardctl -n $serve -l shard-base-port -x -d 'Shard i listens on this port + i'
complete -c shardctl -n $serve -l bind -x -d 'Address to listen on'
complete -c shardctl -n $serve -l shard-id -x -d 'With --role shard: which shard this is'
complete -c shardctl -n $serve -l shard -x -d "With --role aggregator: a shard's URL, repeated in shard order"
complete -c shardctl -n $serve -l shard-timeout -x -d 'With --role aggregator: seconds to wait for a shard'
complete -c shardctl -n $serve -l routing -x -a 'value round-robin random' -d 'How increments pick a shard'
complete -c shardctl -n $serve -l threads -x -d 'Event-loop threads per listener'
complete -c shardctl -n $serve -l data-dir -x -a '(__fish_complete_directories)' -d 'Where shards keep their counts'
complete -c shardctl -n $serve -l in-memory -d 'Keep counts in memory only'
complete -c shardctl -n $serve -l fsync -x -a 'always everysec no' -d 'When to fsync the journal'
complete -c shardctl -n $serve -l idempotency-window -x -d 'Seconds a shard remembers an Idempotency-Key'
complete -c shardctl -n $serve -l token-file -r -F -d 'Require the bearer token in this file'
complete -c shardctl -n $serve -l daemon -d 'Detach and run in the background'
complete -c shardctl -n $serve -l pid-file -r -F -d 'Write the pid here'
complete -c shardctl -n $serve -l log-file -r -F -d 'Append the log here once ready'
complete -c shardctl -n $serve -l log-level -x -a 'debug info warning error' -d 'The lowest level logged'
complete -c shardctl -n $serve -l access-log -d 'Log one line per request'
complete -c shardctl -n $serve -l no-metrics -d 'Count nothing for GET /metrics'
complete -c shardctl -n $serve -l cors-origin -x -d 'Let web pages from this origin call the API'
complete -c shardctl -n $serve -l tls-cert -r -F -d 'Serve HTTPS with this PEM certificate'
complete -c shardctl -n $serve -l tls-key -r -F -d 'The private key of --tls-cert'
complete -c shardctl -n $serve -l tls-client-ca -r -F -d 'Require client certificates signed by this CA'
complete -c shardctl -n $serve -l cacert -r -F -d "The CA trusted for this process's own https connections"
complete -c shardctl -n $serve -l cert -r -F -d 'The client certificate presented to servers that ask'
complete -c shardctl -n $serve -l key -r -F -d 'The private key of --cert'
complete -c shardctl -n $serve -l etcd -x -d 'Join the cluster in this etcd, or follow it with --role aggregator'
complete -c shardctl -n $serve -l node-id -x -d "With --etcd: this node's name in the cluster"
complete -c shardctl -n $serve -l advertise -x -d 'With --etcd: the URL others reach this node at'
complete -c shardctl -n $serve -l lease -x -d 'With --etcd: seconds after which a silent node is taken for dead'
complete -c shardctl -n $serve -l ack -x -a 'all primary' -d 'With --etcd, replicated: when an increment is acknowledged'

# The options of every client command ("cluster status" is not one).
set -l client "__fish_seen_subcommand_from $clients; and not __fish_seen_subcommand_from cluster"
complete -c shardctl -n $client -l url -x -d "The aggregator's address (default \$SHARDCTL_URL)"
complete -c shardctl -n $client -l timeout -x -d 'Seconds to wait for the answer'
complete -c shardctl -n $client -l json -d "Print the server's JSON answer as it came"
complete -c shardctl -n $client -l token-file -r -F -d "File holding the server's bearer token"
complete -c shardctl -n $client -l cacert -r -F -d 'Trust the CAs in this PEM file for https URLs (default $SHARDCTL_CACERT)'
complete -c shardctl -n $client -l cert -r -F -d 'Present this PEM client certificate (default $SHARDCTL_CERT)'
complete -c shardctl -n $client -l key -r -F -d 'The private key of --cert (default $SHARDCTL_KEY)'

# inc, total and bench
set -l counter "__fish_seen_subcommand_from inc total bench"
complete -c shardctl -n $counter -s k -l counter -x -d "The counter's name"
complete -c shardctl -n $counter -l window -x -d 'A windowed counter: seconds per fixed window'

# inc
set -l inc "__fish_seen_subcommand_from inc"
complete -c shardctl -n $inc -l retries -x -d 'Attempts after the first, with the same Idempotency-Key'
complete -c shardctl -n $inc -l idempotency-key -x -d "The increment's Idempotency-Key"
complete -c shardctl -n $inc -s q -l quiet -d 'Print nothing when it worked'
complete -c shardctl -n $inc -l stdin -d 'Read VALUE or COUNTER VALUE lines from stdin'

# total
set -l total "__fish_seen_subcommand_from total"
complete -c shardctl -n $total -l per-shard -d "Show each shard's part"
complete -c shardctl -n $total -l partial -d 'If shards are down, print the sum of the others'

# counters
set -l counters "__fish_seen_subcommand_from counters"
complete -c shardctl -n $counters -l prefix -x -d 'Only counters whose name starts with this'
complete -c shardctl -n $counters -l top -x -d 'The K highest totals, highest first'
complete -c shardctl -n $counters -l limit -x -d 'At most this many counters, by name'
complete -c shardctl -n $counters -l after -x -d 'Start after this name (the next page)'

# top
set -l top "__fish_seen_subcommand_from top"
complete -c shardctl -n $top -s i -l interval -x -d 'Seconds between two readings'
complete -c shardctl -n $top -s n -l count -x -d 'Stop after this many intervals'
complete -c shardctl -n $top -l top -x -d 'How many of the largest counters to show'

# reset
complete -c shardctl -n "__fish_seen_subcommand_from reset" -s y -l yes -d 'Do not ask for confirmation'

# stop
set -l stop "__fish_seen_subcommand_from stop"
complete -c shardctl -n $stop -l pid-file -r -F -d 'The pid file serve wrote'
complete -c shardctl -n $stop -l timeout -x -d 'Seconds to wait for it to exit'
complete -c shardctl -n $stop -s q -l quiet -d 'Print nothing; the exit code tells'

# bench
set -l bench "__fish_seen_subcommand_from bench"
complete -c shardctl -n $bench -s c -l connections -x -d 'Concurrent keep-alive connections'
complete -c shardctl -n $bench -s n -l requests -x -d 'Requests to send in all'
complete -c shardctl -n $bench -s d -l duration -x -d 'Send requests for this many seconds'
complete -c shardctl -n $bench -l op -x -a 'inc total' -d 'What each request does'
complete -c shardctl -n $bench -l batch -x -d 'Increments per request'

# cluster, and its subcommands until one is given
set -l cluster "__fish_seen_subcommand_from cluster"
set -l cluster_none "$cluster; and not __fish_seen_subcommand_from $cluster_commands"
complete -c shardctl -n $cluster_none -a init -d 'Make a cluster of N shards in etcd'
complete -c shardctl -n $cluster_none -a status -d 'Show the nodes, the shards (owner, epoch, count) and moves under way'
complete -c shardctl -n $cluster_none -a move -d 'Move one shard to another node, online'
complete -c shardctl -n $cluster_none -a rebalance -d 'Spread the shards evenly over the live nodes'
complete -c shardctl -n $cluster_none -a drain -d 'Move every shard off a node, so that it can be stopped'
complete -c shardctl -n $cluster_none -a promote -d 'Make an in-sync follower the primary of a shard (a failover by hand)'
complete -c shardctl -n $cluster_none -a reshard -d "Change a stopped cluster's shard count, keeping every count and key"

# The options of every cluster subcommand.
set -l cluster_any "$cluster; and __fish_seen_subcommand_from $cluster_commands"
complete -c shardctl -n $cluster_any -l etcd -x -d "etcd's client URL (default \$SHARDCTL_ETCD)"
complete -c shardctl -n $cluster_any -l timeout -x -d 'Seconds to wait for etcd and for each node'
complete -c shardctl -n $cluster_any -l json -d 'Print JSON instead of text'
complete -c shardctl -n $cluster_any -l cacert -r -F -d 'Trust the CAs in this PEM file for https URLs (default $SHARDCTL_CACERT)'
complete -c shardctl -n $cluster_any -l cert -r -F -d 'Present this PEM client certificate (default $SHARDCTL_CERT)'
complete -c shardctl -n $cluster_any -l key -r -F -d 'The private key of --cert (default $SHARDCTL_KEY)'
complete -c shardctl -n "$cluster; and __fish_seen_subcommand_from init status move rebalance drain promote" -l token-file -r -F -d "File holding the nodes' bearer token"

# cluster init; cluster move; each of cluster move, rebalance and drain, which move shards
complete -c shardctl -n "$cluster; and __fish_seen_subcommand_from init" -l shards -x -d "Number of shards (changing it later: cluster reshard)"
complete -c shardctl -n "$cluster; and __fish_seen_subcommand_from init" -l replicas -x -d 'Copies of each shard: a primary and R-1 followers'
complete -c shardctl -n "$cluster; and __fish_seen_subcommand_from move" -l to -x -d 'The id of the node to move it to'
complete -c shardctl -n "$cluster; and __fish_seen_subcommand_from move rebalance drain" -l copy-timeout -x -d 'Seconds a node may take to copy one shard'
# cluster promote
complete -c shardctl -n "$cluster; and __fish_seen_subcommand_from promote" -l to -x -d 'The in-sync follower to promote (default: the first alive)'
# cluster reshard
set -l reshard "$cluster; and __fish_seen_subcommand_from reshard"
complete -c shardctl -n $reshard -l shards -x -d 'The new number of shards'
complete -c shardctl -n $reshard -l data-dir -x -a '(__fish_complete_directories)' -d 'A data directory holding old shards'
complete -c shardctl -n $reshard -l node-id -x -d 'The node that owns every new shard'
