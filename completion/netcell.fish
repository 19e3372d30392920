# fish completion for netcell(8): commands, each command's options and their values, namespace
# and network names read from the run dir that the command line names (netcell [--backend B]
# [--run-dir D] list --json), files for up/down, and the command after the -- of run and exec.
# Installed to share/fish/vendor_completions.d/netcell.fish.
# When netcell gains an option, add it here (tests/completion_test.sh says which are missing).

# Prints the command path on the command line ("create", "network rm"; nothing before one), then
# the global options that choose the backend and the run dir, one a line, after a "--" line.
function __netcell_parse
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l path
    set -l globals
    set -l takes_value --backend --run-dir --netns-dir --private-subnet --private-subnet6
    while set -q tokens[1]
        set -l token $tokens[1]
        set -e tokens[1]
        if contains -- $token $takes_value
            if test (count $path) -eq 0; and set -q tokens[1]; and test $token != --private-subnet; and test $token != --private-subnet6
                set -a globals $token $tokens[1]
            end
            set -q tokens[1]; and set -e tokens[1]
        else if string match -qr -- '^--(backend|run-dir|netns-dir)=' $token
            test (count $path) -eq 0; and set -a globals $token
        else if string match -q -- '-*' $token
            test $token = --; and break
        else if test (count $path) -eq 0; or contains -- "$path" network policy profile
            set -a path $token
        else
            break
        end
    end
    echo "$path"
    echo --
    printf '%s\n' $globals
end

function __netcell_command
    __netcell_parse | head -n 1
end

# netcell as typed, with the global options of the command line, running $argv.
function __netcell_query
    set -l parsed (__netcell_parse)
    set -l program (commandline -opc)[1]
    $program $parsed[3..-1] $argv 2>/dev/null
end

function __netcell_names -a what
    if test $what = ns
        __netcell_query list --json
    else
        __netcell_query network list --json
    end | awk -v what=$what '
        /^  [{]/ { kind = "" }
        /^    "kind": / { kind = $2 }
        /^    "name": / {
          name = $2; gsub(/[",]/, "", name)
          if (what == "ns" || kind ~ /bridged/) print name
        }'
end

function __netcell_using -a path
    set -l command (__netcell_command)
    test "$command" = "$path"
end

function __netcell_no_command
    set -l command (__netcell_command)
    test -z "$command"
end

# Words after the command path that are not options: the positionals typed so far.
function __netcell_positionals
    set -l path (string split -n ' ' -- (__netcell_command))
    set -l tokens (commandline -opc)
    set -l n 0
    set -l seen 0
    for token in $tokens[2..-1]
        if test $seen -lt (count $path)
            set -l next (math $seen + 1)
            test "$token" = "$path[$next]"; and set seen $next
        else if not string match -q -- '-*' $token
            set n (math $n + 1)
        end
    end
    echo $n
end

# After the -- of run or exec: the command's own words.
function __netcell_after_dashdash
    contains -- (__netcell_command) run exec; and contains -- -- (commandline -opc)
end

function __netcell_first_after_dashdash
    __netcell_after_dashdash; or return 1
    set -l tokens (commandline -opc)
    test $tokens[-1] = --
end

complete -c netcell -f

# Global options and commands.
set -l no_command __netcell_no_command
complete -c netcell -s h -l help -d 'Print the help and exit'
complete -c netcell -n $no_command -l version -d 'Print the version and the source revision'
complete -c netcell -n $no_command -l backend -x -a 'auto linux rootless simulation' -d Backend
complete -c netcell -n $no_command -l run-dir -x -a '(__fish_complete_directories)' -d 'State directory'
complete -c netcell -n $no_command -l netns-dir -x -a '(__fish_complete_directories)' -d 'Where namespaces are bind-mounted'
complete -c netcell -n $no_command -l private-subnet -x -d 'Address pool of private namespaces'
complete -c netcell -n $no_command -l private-subnet6 -x -d 'IPv6 pool of private namespaces'
complete -c netcell -n $no_command -s v -l verbose -d 'Say more'
complete -c netcell -n $no_command -s q -l quiet -d 'Say less'
for command in 'create:Create a named namespace' 'run:Run a command in a new namespace' \
        'exec:Run a command inside an existing namespace' 'list:List namespaces' \
        'info:Show a namespace' "stats:Show a namespace's interface counters" \
        'find-pid:Find the namespace a process owns or lives in' 'destroy:Destroy namespaces' \
        'gc:Remove what interrupted runs left behind' 'network:Manage networks' \
        "policy:Show or change a private or bridged namespace's egress policy" \
        'profile:Show the named profiles of create and run' \
        "log:Show a namespace's denied-flow log" \
        'up:Bring up a topology file' 'down:Remove what a topology file made' \
        'doctor:Check privileges, kernel features and state' \
        'metrics:Print the counters in the Prometheus text format'
    set -l word (string split -m 1 : -- $command)
    complete -c netcell -n $no_command -a $word[1] -d $word[2]
end

# create and run.
for command in create run
    set -l when "__netcell_using $command; and not __netcell_after_dashdash"
    complete -c netcell -n $when -l mode -x -a 'full private shared bridged' -d 'Isolation mode'
    complete -c netcell -n $when -l network -x -a '(__netcell_names net)' -d 'Bridged network to join'
    complete -c netcell -n $when -l ip -x -d 'Static address with prefix length'
    complete -c netcell -n $when -l gateway -x -d 'Default gateway'
    complete -c netcell -n $when -l mtu -x -d 'MTU of the namespace interface'
    complete -c netcell -n $when -l dns -x -d 'DNS server (repeatable)'
    complete -c netcell -n $when -l publish -x -d 'Publish a port: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]'
    complete -c netcell -n $when -l rate -x -d 'Bandwidth limit in both directions'
    complete -c netcell -n $when -l egress-rate -x -d 'Bandwidth limit of traffic leaving'
    complete -c netcell -n $when -l ingress-rate -x -d 'Bandwidth limit of traffic entering'
    complete -c netcell -n $when -l egress -x -a 'allow deny' -d 'Egress default of new connections'
    complete -c netcell -n $when -l allow -x -d 'Egress rule it may reach: DEST[:PORTS][/PROTO]'
    complete -c netcell -n $when -l deny -x -d 'Egress rule it may not reach: DEST[:PORTS][/PROTO]'
    complete -c netcell -n $when -l allow-domain -x -d 'Domain rule: names it may resolve and reach'
    complete -c netcell -n $when -l deny-domain -x -d 'Name pattern the resolver refuses'
    complete -c netcell -n $when -l policy -r -F -d 'Egress policy file'
    complete -c netcell -n $when -l refuse-dns -x -a 'refused nxdomain' -d 'Answer to names the policy does not allow'
    complete -c netcell -n $when -l dns-min-ttl -x -d 'Seconds a learned address stays allowed at least'
    complete -c netcell -n $when -l dns-grace -x -d 'Seconds added to that'
    complete -c netcell -n $when -l owner -x -a '(__fish_complete_pids)' -d 'Owner pid'
    complete -c netcell -n $when -l no-ipv6 -d 'Private: IPv4 only'
    complete -c netcell -n $when -l profile -x -a 'untrusted egress-allowlist service' -d 'Named profile'
end
complete -c netcell -n '__netcell_using create' -l netns-of -x -a '(__fish_complete_pids)' -d 'Adopt the network namespace of this process'
complete -c netcell -n '__netcell_using create' -l json -d 'Print the namespace as JSON'
complete -c netcell -n '__netcell_using run; and not __netcell_after_dashdash' -l name -x -d 'Namespace name'
for command in run exec
    set -l when "__netcell_using $command; and not __netcell_after_dashdash"
    complete -c netcell -n $when -l pid-ns -d 'Also a new PID namespace'
    complete -c netcell -n $when -l init -d "With --pid-ns: netcell's minimal init as PID 1"
end
complete -c netcell -n '__netcell_using exec; and test (__netcell_positionals) -eq 0' -a '(__netcell_names ns)' -d Namespace
complete -c netcell -n __netcell_first_after_dashdash -a '(__fish_complete_command)'
complete -c netcell -n '__netcell_after_dashdash; and not __netcell_first_after_dashdash' -F

# The other commands.
for command in list info stats find-pid gc doctor up down 'network create' 'network list' \
        'policy show' 'policy set' 'policy clear' 'profile list'
    complete -c netcell -n "__netcell_using '$command'" -l json -d 'Print JSON'
end
# profile.
complete -c netcell -n '__netcell_using profile' -a list -d 'List the profiles and what each grants'
# policy.
complete -c netcell -n '__netcell_using policy' -a show -d 'Show the egress policy'
complete -c netcell -n '__netcell_using policy' -a set -d 'Replace the egress policy'
complete -c netcell -n '__netcell_using policy' -a clear -d 'Remove the egress policy'
for command in 'policy show' 'policy set' 'policy clear'
    complete -c netcell -n "__netcell_using '$command'; and test (__netcell_positionals) -eq 0" -a '(__netcell_names ns)' -d Namespace
end
complete -c netcell -n "__netcell_using 'policy set'" -l egress -x -a 'allow deny' -d 'Egress default of new connections'
complete -c netcell -n "__netcell_using 'policy set'" -l allow -x -d 'Egress rule it may reach: DEST[:PORTS][/PROTO]'
complete -c netcell -n "__netcell_using 'policy set'" -l deny -x -d 'Egress rule it may not reach: DEST[:PORTS][/PROTO]'
complete -c netcell -n "__netcell_using 'policy set'" -l allow-domain -x -d 'Domain rule: names it may resolve and reach'
complete -c netcell -n "__netcell_using 'policy set'" -l deny-domain -x -d 'Name pattern the resolver refuses'
complete -c netcell -n "__netcell_using 'policy set'" -l policy -r -F -d 'Egress policy file'
complete -c netcell -n "__netcell_using 'policy set'" -l refuse-dns -x -a 'refused nxdomain' -d 'Answer to names the policy does not allow'
complete -c netcell -n "__netcell_using 'policy set'" -l dns-min-ttl -x -d 'Seconds a learned address stays allowed at least'
complete -c netcell -n "__netcell_using 'policy set'" -l dns-grace -x -d 'Seconds added to that'
for command in info stats
    complete -c netcell -n "__netcell_using $command; and test (__netcell_positionals) -eq 0" -a '(__netcell_names ns)' -d Namespace
end
complete -c netcell -n '__netcell_using find-pid; and test (__netcell_positionals) -eq 0' -a '(__fish_complete_pids)'
complete -c netcell -n '__netcell_using destroy' -a '(__netcell_names ns)' -d Namespace
complete -c netcell -n '__netcell_using destroy' -l kill -d 'End every process still inside first'
for command in up down
    complete -c netcell -n "__netcell_using $command" -l dry-run -d 'Print the plan and change nothing'
    complete -c netcell -n "__netcell_using $command; and test (__netcell_positionals) -eq 0" -F -d 'Topology file'
end

# log.
complete -c netcell -n '__netcell_using log; and test (__netcell_positionals) -eq 0' -a '(__netcell_names ns)' -d Namespace
complete -c netcell -n '__netcell_using log' -s f -l follow -d 'Go on printing what is logged until interrupted'
complete -c netcell -n '__netcell_using log' -s n -l lines -x -d 'Show only the last N lines'
complete -c netcell -n '__netcell_using log' -l json -d 'Print the JSON lines as they are kept'

complete -c netcell -n '__netcell_using metrics' -l textfile -x -a '(__fish_complete_directories)' -d 'Write them atomically to DIR/netcell.prom'

# network.
complete -c netcell -n '__netcell_using network' -a create -d 'Create a bridged network'
complete -c netcell -n '__netcell_using network' -a list -d 'List networks'
complete -c netcell -n '__netcell_using network' -a rm -d 'Remove networks'
complete -c netcell -n "__netcell_using 'network create'" -l subnet -x -d 'IPv4 subnet, e.g. 10.50.0.0/24'
complete -c netcell -n "__netcell_using 'network create'" -l subnet6 -x -d 'IPv6 prefix for dual stack, e.g. fd00:50::/64'
complete -c netcell -n "__netcell_using 'network create'" -l nat -d 'Masquerade traffic leaving the host'
complete -c netcell -n "__netcell_using 'network create'" -l host-access -d "Let namespaces reach the host's addresses"
complete -c netcell -n "__netcell_using 'network rm'" -a '(__netcell_names net)' -d Network
