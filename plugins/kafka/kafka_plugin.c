/*
 * kafka_plugin.c - the "kafka" plugin descriptor.
 */
#include "kafka.h"

SL_PLUGIN_DEFINE("kafka", "0.1.0", "Kafka source and sink on librdkafka", &kafka_source_op,
                 &kafka_sink_op);
