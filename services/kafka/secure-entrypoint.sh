#!/bin/bash
# Entrypoint of the secured broker of docker-compose.yml (apache/kafka image).
#
# The image's own start script formats the storage without SCRAM users, but a broker whose
# inter-broker listener uses SASL/SCRAM needs the admin's credential in its metadata before
# it starts. So this script writes server.properties, formats the storage once with one
# --add-scram per principal (passwords from the secrets volume, handed to the JVM in a
# private argument file, never on a command line), then starts the broker. The settings are
# those of the Docker-free secured stack (dossier_stream/securestack.py):
#   - SASL_SSL with SCRAM-SHA-512 for clients and between brokers;
#   - the KRaft controller listener on localhost only, SASL_SSL with PLAIN and the admin's
#     password: PLAINTEXT would make its callers User:ANONYMOUS, who would then have to be
#     a super user, and controllers cannot check SCRAM credentials;
#   - StandardAuthorizer, allow.everyone.if.no.acl.found=false, super.users=User:admin;
#     `dossier-stream services acls` (the `acls` service) adds the other principals' ACLs.
# Secrets stay in their files: the broker reads the admin password through
# DirectoryConfigProvider (${dir:...}), so no password is written into server.properties.
set -euo pipefail

SECRETS=${SECRETS_DIR:-/secrets}
KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
DATA=${KAFKA_DATA_DIR:-/tmp/kraft-combined-logs}
CONFIG=${KAFKA_CONFIG_FILE:-/tmp/dossier-kafka/server.properties}
CLIENT_CONFIG=${KAFKA_CLIENT_CONFIG_FILE:-/tmp/dossier-kafka/admin-client.properties}
INTERNAL=${INTERNAL_LISTENER:-kafka:9092}       # address the other containers use
EXTERNAL=${HOST_LISTENER:-127.0.0.1:29192}      # address published on the host
CONTROLLER=${CONTROLLER_LISTENER:-localhost:9093}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

umask 077
mkdir -p "$(dirname "$CONFIG")" "$(dirname "$CLIENT_CONFIG")" "$DATA"
password="\${dir:$SECRETS/kafka:admin.password}"
scram_jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$password\";"
plain_jaas="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$password\" user_admin=\"$password\";"

cat > "$CONFIG" <<EOF
# Written by services/kafka/secure-entrypoint.sh at every start.
process.roles=broker,controller
node.id=1
listeners=INTERNAL://:${INTERNAL##*:},HOST://:${EXTERNAL##*:},CONTROLLER://$CONTROLLER
advertised.listeners=INTERNAL://$INTERNAL,HOST://$EXTERNAL
listener.security.protocol.map=INTERNAL:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SASL_SSL
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain_jaas
config.providers=dir
config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
config.providers.dir.param.allowed.paths=$SECRETS/kafka
listener.name.internal.scram-sha-512.sasl.jaas.config=$scram_jaas
listener.name.host.scram-sha-512.sasl.jaas.config=$scram_jaas
ssl.keystore.type=PEM
ssl.keystore.location=$SECRETS/tls/kafka.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/tls/ca.crt
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
log.dirs=$DATA
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF

# For the healthcheck and for kafka-*.sh tools run in this container (--command-config).
cat > "$CLIENT_CONFIG" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/tls/ca.crt
config.providers=dir
config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
sasl.jaas.config=$scram_jaas
EOF

if [ ! -f "$DATA/meta.properties" ]; then
    cluster_id=$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid | tail -n 1)
    args=$(mktemp)
    trap 'rm -f "$args"' EXIT
    {
        printf '%s\n' kafka.tools.StorageTool format -t "$cluster_id" -c "\"$CONFIG\"" --standalone
        for file in "$SECRETS"/kafka/*.password; do
            name=$(basename "$file" .password)
            # printf is a shell builtin: the password never appears in a process list.
            printf -- '--add-scram\n"SCRAM-SHA-512=[name=%s,password=%s]"\n' "$name" "$(<"$file")"
        done
    } > "$args"
    "$JAVA" -Xmx256m -cp "$KAFKA_HOME/libs/*" "@$args"
    rm -f "$args"
    trap - EXIT
fi

exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG"
