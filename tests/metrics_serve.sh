# shellcheck shell=bash
# The `serve` part of tests/metrics_test.sh (sourced by it, inside a world): netcell-service's
# metrics endpoint, scraped by a real Prometheus server.
here=$(dirname "${BASH_SOURCE[0]}")
nc=("$netcell" --backend linux)
endpoint=127.0.0.1:9464
url=http://$endpoint/metrics
pids=()
# Ends what this test started, by pid (the world ends with it anyway).
stop_started() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap stop_started EXIT

# Bad values: one line each, a non-zero exit, no service recorded.
for bad in foo 127.0.0.1 127.0.0.1:0 127.0.0.1:65536 127.0.0.1:9x '[::1]' '::1:9464' \
  localhost:9464 '[127.0.0.1]:9464' 192.0.2.1:9464; do
  if err=$("$service" --metrics-listen "$bad" 2>&1); then fail "--metrics-listen $bad accepted"; fi
  [ "$(wc -l <<<"$err")" = 1 ] && [[ $err == "netcell-service: "*"$bad"* ]] ||
    fail "--metrics-listen $bad: '$err'"
  [ ! -e /run/netcell/service.json ] || fail "--metrics-listen $bad left a service record"
done

# Namespaces with traffic: a private one, two on a bridged network, one with a policy.
"${nc[@]}" create web --mode private >/dev/null
"${nc[@]}" network create lan --subnet 10.77.0.0/24 >/dev/null
"${nc[@]}" create n1 --network lan --ip 10.77.0.11/24 >/dev/null
"${nc[@]}" create n2 --network lan --ip 10.77.0.12/24 >/dev/null
"${nc[@]}" exec n1 -- ping -q -c 5 -i 0.2 -s 1000 10.77.0.12 >/dev/null
# web's eth0: a few packets toward its gateway (the host's end answers).
"${nc[@]}" exec web -- ping -q -c 3 -i 0.2 -W 1 "$("${nc[@]}" info web --json | jq -r .gateway)" \
  >/dev/null

# A policy namespace, for which netcell starts its service on demand. "The internet" is a
# namespace of this world with a TEST-NET address the world routes to.
ip netns add wan
ip link add wan0 type veth peer name eth0 netns wan
ip addr add 203.0.113.1/24 dev wan0
ip link set wan0 up
ip -n wan addr add 203.0.113.9/24 dev eth0
ip -n wan link set eth0 up
"${nc[@]}" create pol --mode private --allow 198.51.100.0/24 --allow-domain allowed.example \
  --dns 192.0.2.53 >/dev/null
on_demand_pid=$(jq -r .pid /run/netcell/service.json)
[ "$(jq -r .on_demand /run/netcell/service.json)" = true ] ||
  fail "netcell's own service is not recorded on demand: $(cat /run/netcell/service.json)"

# The service, as an administrator (systemd) runs it: not on demand; it replaces netcell's.
"$service" --metrics-listen "$endpoint" 2>"$scratch/service.log" &
service_pid=$!
pids+=("$service_pid")
for _ in $(seq 100); do
  curl -sf -o /dev/null "$url" && break
  sleep 0.1
done
curl -sf -o "$scratch/first.prom" "$url" || fail "no answer on $url: $(cat "$scratch/service.log")"
[ "$(jq -r .pid,.on_demand /run/netcell/service.json | xargs)" = "$service_pid false" ] ||
  fail "the record does not name the administrator's service: $(cat /run/netcell/service.json)"
for _ in $(seq 50); do
  kill -0 "$on_demand_pid" 2>/dev/null || break
  sleep 0.1
done
! kill -0 "$on_demand_pid" 2>/dev/null || fail "netcell's on-demand service still runs beside it"

# It resolves for the policy namespace: a refused name and a denied flow are counted.
gateway=$("${nc[@]}" info pol --json | jq -r .gateway)
probe=$("${nc[@]}" exec pol -- python3 "$here/support/dns_probe.py" query "$gateway" \
  blocked.example.net --timeout-ms 2000)
[[ $probe == REFUSED* ]] || fail "blocked.example.net: $probe"
if "${nc[@]}" exec pol -- ping -q -c 2 -i 0.2 -W 1 203.0.113.9 >/dev/null 2>&1; then
  fail "pol reached 203.0.113.9, which its policy denies"
fi
curl -sf -o "$scratch/pol.prom" "$url" || fail "no answer on $url"
[ "$(value "$scratch/pol.prom" netcell_resolver_queries_total 'namespace="pol",result="refused"')" = 1 ] ||
  fail "netcell_resolver_queries_total{namespace=\"pol\",result=\"refused\"} is not 1"
[ "$(value "$scratch/pol.prom" netcell_resolver_queries_total 'namespace="pol",result="answered"')" = 0 ] ||
  fail "netcell_resolver_queries_total{namespace=\"pol\",result=\"answered\"} is not 0"
denied=$(value "$scratch/pol.prom" netcell_policy_denied_packets_total 'namespace="pol"') ||
  fail "no netcell_policy_denied_packets_total of pol"
[ "${denied:-0}" -ge 1 ] || fail "netcell_policy_denied_packets_total of pol: '$denied', not >= 1"
[ "$(value "$scratch/pol.prom" netcell_policy_packets_total \
  'namespace="pol",rule="default",action="deny",match=""')" = "$denied" ] ||
  fail "pol's denied packets are not its deny default's"
value "$scratch/pol.prom" netcell_policy_packets_total \
  'namespace="pol",rule="0",action="allow",match="198.51.100.0/24/any"' >/dev/null ||
  fail "no netcell_policy_packets_total of pol's rule 0"
check_with_promtool "$scratch/pol.prom"

# A scrape that waits (here for the run dir's lock, which another process holds for 4 s) delays
# no DNS answer: the answer comes while the scrape still waits.
flock /run/netcell/lock sleep 4 &
holder=$!
pids+=("$holder")
sleep 0.3
scrape_start=$(date +%s%N)
curl -sf -m 20 -o "$scratch/slow.prom" "$url" &
scrape=$!
sleep 0.3
dns_start=$(date +%s%N)
probe=$(ip netns exec pol python3 "$here/support/dns_probe.py" query "$gateway" \
  blocked.example.net --timeout-ms 1000)
dns_ms=$((($(date +%s%N) - dns_start) / 1000000))
[[ $probe == REFUSED* ]] || fail "a query during a waiting scrape: $probe"
kill -0 "$scrape" 2>/dev/null || fail "the scrape was over before the DNS answer came ($dns_ms ms)"
wait "$scrape" || fail "the waiting scrape failed"
scrape_ms=$((($(date +%s%N) - scrape_start) / 1000000))
[ "$scrape_ms" -ge 3000 ] || fail "the scrape did not wait for the lock ($scrape_ms ms): no test"
wait "$holder" || true
grep -q '^netcell_resolver_queries_total{namespace="pol",result="refused"} 2$' "$scratch/slow.prom" ||
  fail "the waiting scrape does not count the query it waited beside"
echo "a DNS answer during a scrape that waited $scrape_ms ms: $dns_ms ms"
"${nc[@]}" destroy pol
kill -0 "$service_pid" 2>/dev/null && [ -e /run/netcell/service.json ] ||
  fail "netcell stopped the administrator's service with its last policy namespace"
curl -sf -o "$scratch/after.prom" "$url" || fail "no answer after the policy namespace went"
! grep -q 'namespace="pol"' "$scratch/after.prom" || fail "pol is still in the metrics"

# The endpoint's text is `netcell metrics`' (one generator) plus the resolver's families.
"${nc[@]}" metrics >"$scratch/cli.prom"
curl -sf "$url" | grep -v '^# [A-Z]* netcell_resolver_\|^netcell_resolver_' >"$scratch/served.prom"
diff "$scratch/cli.prom" "$scratch/served.prom" >"$scratch/diff" ||
  fail "the endpoint and netcell metrics differ: $(head -5 "$scratch/diff")"

# HTTP: only GET and HEAD of /metrics; requests are bounded; an idle client blocks nobody.
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(status "http://$endpoint/")" = 404 ] || fail "GET / is not 404"
[ "$(status "http://$endpoint/metrics/x")" = 404 ] || fail "GET /metrics/x is not 404"
[ "$(status -X POST -d x=1 "$url")" = 405 ] || fail "POST /metrics is not 405"
[ "$(status -X DELETE "$url")" = 405 ] || fail "DELETE /metrics is not 405"
[ "$(curl -s -o /dev/null -D - "$url" | tr -d '\r' | sed -n 's/^Content-Type: //Ip')" = \
  "text/plain; version=0.0.4; charset=utf-8" ] || fail "Content-Type of /metrics"
[ "$(curl -s -I "$url" | head -1 | tr -d '\r')" = "HTTP/1.1 200 OK" ] || fail "HEAD /metrics"
[ "$(status -H "X-Big: $(head -c 10000 /dev/zero | tr '\0' a)" "$url")" = 431 ] ||
  fail "a 10 kB request head is not 431"
exec 7<>"/dev/tcp/${endpoint%:*}/${endpoint#*:}"  # connected, says nothing
printf 'GET /metr' >&7                              # half a request
curl -sf -m 5 -o /dev/null "$url" || fail "an idle client blocked another"
scrapes=()
for i in $(seq 20); do
  curl -sf -m 10 -o "$scratch/parallel.$i" "$url" &
  scrapes+=("$!")
done
wait_failed=0
for pid in "${scrapes[@]}"; do wait "$pid" || wait_failed=$((wait_failed + 1)); done
[ "$wait_failed" = 0 ] || fail "$wait_failed of 20 parallel scrapes failed"
for i in $(seq 20); do
  grep -q '^netcell_namespaces{mode="bridged"} 2$' "$scratch/parallel.$i" ||
    fail "parallel scrape $i: no netcell_namespaces"
done
exec 7>&-

# A real Prometheus server scrapes the endpoint every second.
cat >"$scratch/prometheus.yml" <<CONFIG
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: netcell
    static_configs:
      - targets: ['$endpoint']
CONFIG
/usr/bin/prometheus --config.file="$scratch/prometheus.yml" --storage.tsdb.path="$scratch/tsdb" \
  --web.listen-address=127.0.0.1:9090 >"$scratch/prometheus.log" 2>&1 &
pids+=("$!")
api=http://127.0.0.1:9090/api/v1
for _ in $(seq 600); do
  curl -sf -o /dev/null http://127.0.0.1:9090/-/ready && break
  sleep 0.1
done
curl -sf -o /dev/null http://127.0.0.1:9090/-/ready ||
  fail "Prometheus not ready in 60 s: $(tail -3 "$scratch/prometheus.log")"
# query PROMQL: the value of its first sample ("" when none).
query() { curl -sf "$api/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // ""'; }
rx_of() { ip -n "$1" -j -s link show eth0 | jq -r '.[0].stats64.rx.bytes'; }
for ns in n2 web; do
  [ $ns = n2 ] && net=lan || net=private
  selector="netcell_interface_receive_bytes_total{namespace=\"$ns\",interface=\"eth0\",network=\"$net\"}"
  matched=0
  for _ in 1 2 3; do
    kernel=$(rx_of $ns)
    since=$(date +%s.%N)
    # Until Prometheus holds a sample it scraped after the kernel's counter was read.
    for _ in $(seq 300); do
      scraped=$(query "timestamp($selector)")
      [ -n "$scraped" ] && awk -v a="$scraped" -v b="$since" 'BEGIN { exit !(a > b) }' && break
      sleep 0.1
    done
    got=$(query "$selector")
    [ "$(rx_of $ns)" = "$kernel" ] || continue  # a packet came meanwhile: again
    [ "$got" = "$kernel" ] || fail "Prometheus says $ns received $got bytes, ip -s link $kernel"
    matched=1
    break
  done
  [ $matched = 1 ] || fail "$ns's counter never held still for a scrape"
  echo "Prometheus: $ns eth0 received $got bytes; ip -n $ns -s link: $kernel"
done
[ "$(query 'netcell_namespaces{mode="bridged"}')" = 2 ] || fail "Prometheus: netcell_namespaces"
[ "$(query 'up{job="netcell"}')" = 1 ] || fail "Prometheus: up{job=\"netcell\"} is not 1"
rx_web=$(query 'netcell_interface_receive_bytes_total{namespace="web",interface="eth0"}')
[ "${rx_web:-0}" -ge 200 ] || fail "web received only '$rx_web' bytes of its gateway's replies"
rx_n2=$(query 'netcell_interface_receive_bytes_total{namespace="n2",interface="eth0"}')
[ "${rx_n2:-0}" -ge 5000 ] || fail "n2 received only '$rx_n2' bytes of n1's pings"

"${nc[@]}" destroy web n1 n2
"${nc[@]}" network rm lan
# With the last namespace netcell's table went; a new policy namespace's table points its DNS at
# the administrator's service again, which answers it.
! nft list table ip netcell >/dev/null 2>&1 || echo "(netcell's table outlived its namespaces)"
"${nc[@]}" create pol2 --mode private --allow-domain allowed.example --dns 192.0.2.53 >/dev/null
probe=$("${nc[@]}" exec pol2 -- python3 "$here/support/dns_probe.py" query \
  "$("${nc[@]}" info pol2 --json | jq -r .gateway)" blocked.example.net --timeout-ms 2000)
[[ $probe == REFUSED* ]] || fail "pol2, after netcell's table was made again: $probe"
[ "$(curl -sf "$url" | grep -c '^netcell_resolver_queries_total{namespace="pol2",result="refused"} 1$')" = 1 ] ||
  fail "the service did not count pol2's refused name"
"${nc[@]}" destroy pol2
kill -0 "$service_pid" 2>/dev/null || fail "netcell stopped the administrator's service"
kill "$service_pid"
wait "$service_pid" || fail "netcell-service exited $? on SIGTERM"
grep -q "serving metrics on $url" "$scratch/service.log" || fail "service.log: $(cat "$scratch/service.log")"
