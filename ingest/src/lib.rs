//! The ingestion service: MQTT in, InfluxDB out.
