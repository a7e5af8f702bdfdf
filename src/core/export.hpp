// pg_ml core: the export envelope that carries one model version between databases
// (ml_export / ml_import). docs/export-format.md describes the format byte by byte.
//
// An envelope is a fixed header followed by a body:
//   offset 0  magic     8 bytes  "PGMLEXPT"
//   offset 8  format    u16      envelope format version (kExportFormat)
//   offset 10 flags     u16      0 (readers reject anything else)
//   offset 12 checksum  u32      CRC-32 (IEEE, as zlib) of the body
//   offset 16 length    u64      body length in bytes
//   offset 24 body      the fields of ExportRecord in declaration order, then the model blob
// Integers little-endian; strings and the blob are a u64 length followed by the bytes.
// An envelope is untrusted input: every read is bounds-checked, every string must be
// UTF-8 without NUL bytes, the model blob is deserialized, and the metadata must describe
// the model the blob holds. Every failure is Error(InvalidBinary).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model.hpp"

namespace pgml {

constexpr uint16_t kExportFormat = 1;
constexpr size_t kExportHeaderSize = 24;

struct ExportRecord {
	// provenance
	std::string pg_ml_version;   // of the exporting extension
	std::string source_database;
	std::string exported_at;     // timestamptz as text
	std::string exported_by;
	std::string model_name;
	int64_t model_id = 0;
	int32_t version = 0;
	// the model row (descriptive; checked against the blob on import)
	std::string task;
	std::string algorithm;
	bool has_target = false;
	std::string target;
	std::string relation;
	std::string features_json;
	std::string classes_json;    // empty: no classes
	// the version row
	std::string hyperparams_json;
	std::string preprocess_json;
	std::string preprocessing_state_json;
	std::string metrics_json;
	std::string report_json;
	std::string coefficients_json; // empty: none
	int64_t rows_train = 0;
	int64_t rows_test = 0;
	double test_size = 0;
	int64_t seed = 0;
	std::string data_fingerprint;
	std::string trained_by;
	std::string trained_at;
	double read_ms = 0, fit_ms = 0, duration_ms = 0;
	// the version's model blob (serialize.hpp format)
	std::vector<uint8_t> blob;
};

// The JSON texts the catalog stores for a model (model row and version row).
struct ModelDescription {
	std::string features_json, classes_json, hyperparams_json, preprocess_json, state_json, coefficients_json;
};
ModelDescription describe_model(const Model &m);

// Encodes rec (header + body).
std::vector<uint8_t> encode_export(const ExportRecord &rec);

// Decodes and validates an envelope: header, checksum, every field, the blob (deserialized
// into *model), and that task, algorithm, target, features and classes describe that model.
ExportRecord decode_export(const uint8_t *data, size_t len, std::unique_ptr<Model> *model);

// Where an imported version came from (the "imported" key of its report; the original
// report goes under "original").
std::string import_provenance_json(const ExportRecord &rec, size_t envelope_len, uint32_t checksum);

} // namespace pgml
