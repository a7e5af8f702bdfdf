#!/usr/bin/python3
"""Writes SQL that loads real datasets shipped by Debian's python3-sklearn into tables.

Usage: load_datasets.py [diabetes] [iris] [breast_cancer] ... > load.sql
Each dataset becomes a table with a row id column `id` (file order), its features and its
target. Only the data files are read (no sklearn import), so this runs anywhere the package
files are installed.
"""
import csv
import gzip
import sys

DATA = "/usr/lib/python3/dist-packages/sklearn/datasets/data"

DIABETES_COLS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
BREAST_CANCER_COLS = [
    "mean_radius", "mean_texture", "mean_perimeter", "mean_area", "mean_smoothness",
    "mean_compactness", "mean_concavity", "mean_concave_points", "mean_symmetry",
    "mean_fractal_dimension", "radius_error", "texture_error", "perimeter_error", "area_error",
    "smoothness_error", "compactness_error", "concavity_error", "concave_points_error",
    "symmetry_error", "fractal_dimension_error", "worst_radius", "worst_texture",
    "worst_perimeter", "worst_area", "worst_smoothness", "worst_compactness", "worst_concavity",
    "worst_concave_points", "worst_symmetry", "worst_fractal_dimension",
]
IRIS_COLS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def diabetes():
    with gzip.open(f"{DATA}/diabetes_data_raw.csv.gz", "rt") as f:
        X = [line.split() for line in f if line.strip()]
    with gzip.open(f"{DATA}/diabetes_target.csv.gz", "rt") as f:
        y = [line.strip() for line in f if line.strip()]
    cols = [f"{c} float8" for c in DIABETES_COLS] + ["progression float8"]
    rows = [x + [t] for x, t in zip(X, y)]
    return "diabetes", cols, rows


def _sklearn_csv(fname, colnames, target_name, target_type, label_map=None):
    with open(f"{DATA}/{fname}") as f:
        r = csv.reader(f)
        header = next(r)
        names = header[2:]
        rows = []
        for rec in r:
            if not rec:
                continue
            t = rec[-1]
            if label_map == "names":
                t = names[int(t)]
            rows.append(rec[:-1] + [t])
    cols = [f"{c} float8" for c in colnames] + [f"{target_name} {target_type}"]
    return cols, rows


def iris():
    cols, rows = _sklearn_csv("iris.csv", IRIS_COLS, "species", "text", "names")
    return "iris", cols, rows


def breast_cancer():
    # target: 0 = malignant, 1 = benign (as sklearn)
    cols, rows = _sklearn_csv("breast_cancer.csv", BREAST_CANCER_COLS, "benign", "integer")
    return "breast_cancer", cols, rows


def wine():
    with open(f"{DATA}/wine_data.csv") as f:
        r = csv.reader(f)
        next(r)
        rows = [rec for rec in r if rec]
    cols = [f"f{i} float8" for i in range(13)] + ["cultivar integer"]
    return "wine", cols, rows


DATASETS = {"diabetes": diabetes, "iris": iris, "breast_cancer": breast_cancer, "wine": wine}


def emit(name, cols, rows, out):
    out.write(f"DROP TABLE IF EXISTS {name};\n")
    out.write(f"CREATE TABLE {name} (id integer PRIMARY KEY, {', '.join(cols)});\n")
    out.write(f"COPY {name} FROM STDIN (FORMAT csv);\n")
    w = csv.writer(out, lineterminator="\n")
    for i, row in enumerate(rows):
        w.writerow([i] + row)
    out.write("\\.\n")


def main(argv):
    names = argv[1:] or list(DATASETS)
    for n in names:
        if n not in DATASETS:
            sys.exit(f"unknown dataset {n!r}; known: {', '.join(DATASETS)}")
        emit(*DATASETS[n](), sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
