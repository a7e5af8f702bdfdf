// pg_ml glue: a model's deploy metric (deploy_metric.cpp; the rule is src/core/deploy_metric.hpp).
#pragma once

#include "pg_ml.hpp"

// 22023 unless metric is one of task's deploy metrics (message, detail and hint from the core).
void pgml_check_deploy_metric(const char *metric, pgml::Task task);
// Stores a model's deploy metric. SPI connected, catalog identity.
void pgml_store_deploy_metric(int64 model_id, const char *metric);
// The deploy metric of a model: ml.models.deploy_metric, or the default for base's task and
// classes when it has none (palloc'd).
char *pgml_deploy_metric_of(int64 model_id, const pgml::Model *base);
