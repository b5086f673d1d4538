#!/usr/bin/env bash
# Does Swarm mode with an overlay network work on this machine? A throwaway dockerd of its own, stopped at the end.
set -u
WORK=$(mktemp -d)
cd "$(dirname "$0")/.."
export AGENCYSTACK_TEST_RUN_ROOT=/run/agencystack-swarm-$$ AGENCYSTACK_TEST_DATA_ROOT=$WORK/data \
  AGENCYSTACK_TEST_DOCKERD_LOG=$WORK/dockerd.log AGENCYSTACK_TEST_DOCKERD_ARGS="--default-address-pool base=10.240.0.0/16,size=24"
unset DOCKER_HOST
eval "$(bash tests/engine/start-engine.sh)"
trap 'bash tests/engine/stop-engine.sh; rm -rf "$WORK"' EXIT
"${PYTHON:-.venv/bin/python}" - <<'PY'
import docker, sys
sys.path.insert(0, ".")
from tests.images import build
build.ensure_images(docker.from_env(), only=["busybox"])
PY
docker version --format 'engine {{.Server.Version}}'
docker swarm init --advertise-addr 127.0.0.1 >/dev/null && echo "swarm init: ok"
docker network create -d overlay --attachable ov >/dev/null && echo "overlay network: created" || echo "overlay network: FAILED"
docker service create -q --name web --network ov --replicas 2 agencystack-test/busybox:1 \
  sh -c 'mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 8080 -h /w' >/dev/null && echo "service create: ok"
for i in $(seq 1 60); do r=$(docker service ls --filter name=web --format '{{.Replicas}}'); [ "$r" = "2/2" ] && break; sleep 1; done
echo "replicas: $r"
docker service ps web --format '{{.Name}} {{.CurrentState}} {{.Error}}' | head -4
start=$(date +%s.%N)
docker run --rm --network ov agencystack-test/busybox:1 sh -c '
  echo "dns web (VIP): $(nslookup web 2>&1 | tail -2 | tr "\n" " ")";
  echo "dns tasks.web: $(nslookup tasks.web 2>&1 | grep -c Address)";
  timeout 5 wget -q -O - http://web:8080/ && echo "VIP http: ok" || echo "VIP http: FAILED";
  for a in $(nslookup tasks.web 2>/dev/null | awk "/^Address/ && NR>2 {print \$NF}"); do timeout 5 wget -q -O - http://$a:8080/ >/dev/null && echo "task $a http: ok" || echo "task $a http: FAILED"; done'
docker service create -q --name pub --publish 18555:8080 --replicas 1 agencystack-test/busybox:1 \
  sh -c 'mkdir -p /w && echo pub > /w/index.html && exec httpd -f -p 8080 -h /w' >/dev/null 2>$WORK/pub.err && echo "published service: created" || echo "published service: $(cat $WORK/pub.err)"
sleep 8; (timeout 5 wget -q -O - http://127.0.0.1:18555/ && echo "ingress routing mesh: ok") || echo "ingress routing mesh: FAILED"
docker service ps pub --format '{{.CurrentState}} {{.Error}}' | head -2
docker service rm web pub >/dev/null; sleep 2; docker swarm leave --force >/dev/null && echo "swarm left"
