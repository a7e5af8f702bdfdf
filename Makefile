# pg_ml: PGXS build of the extension (pg_ml.so, control file, install scripts).
#   make && make install          build and install into the server of PG_CONFIG
#   make installcheck             run pg_regress (test/sql, expected/), then pg_isolation_regress
#                                 (test/specs, expected/) against a running server
# The pure C++ core's unit tests and the CLI are built by CMake (see CMakeLists.txt).
#   make libpgml_core.a           the core's objects (compiled once, for pg_ml.so) as a static
#                                 library, which CMake's unit tests link instead of compiling the
#                                 core again (cmake -DPGML_CORE_LIBRARY=$PWD/libpgml_core.a)

EXTENSION  = pg_ml
MODULE_big = pg_ml
# The released scripts and the upgrades between them are kept in sql/; the install script of the
# current version is built as the previous one followed by the upgrade, so that a fresh install
# and ALTER EXTENSION ... UPDATE run exactly the same statements.
DATA       = sql/pg_ml--0.1.0.sql sql/pg_ml--0.1.0--0.2.0.sql sql/pg_ml--0.2.0--0.3.0.sql
DATA_built = sql/pg_ml--0.3.0.sql

CORE_SRCS  = $(wildcard src/core/*.cpp src/core/models/*.cpp)
GLUE_SRCS  = $(wildcard src/pg/*.cpp)
CORE_OBJS  = $(CORE_SRCS:.cpp=.o)
OBJS       = $(CORE_OBJS) $(GLUE_SRCS:.cpp=.o)

REGRESS      = $(shell cat test/schedule)
REGRESS_OPTS = --inputdir=test --outputdir=test --load-extension=pg_ml
# concurrency (retrains, predict during deploy / rollback / drop, auto-retrain counting): every
# spec in test/specs, its expected output beside pg_regress's; ISOLATION= runs pg_regress alone
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --outputdir=test/output_iso --load-extension=pg_ml
EXTRA_CLEAN    = test/output_iso libpgml_core.a
# progress notices: the default settings (none before pg_ml.progress_delay); the tests whose
# trainings could take that long on a busy machine turn them off

PG_CONFIG ?= pg_config
EIGEN_INC ?= /usr/include/eigen3

WERROR ?=
PG_CPPFLAGS = -isystem $(EIGEN_INC) -Isrc/core
PG_CXXFLAGS = -std=c++17 -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
              -Wno-cast-function-type -Wno-register $(if $(WERROR),-Werror,)
SHLIB_LINK  = -lxgboost -lstdc++ -lm -lpthread

# The core is compiled without any PostgreSQL include path, so a PostgreSQL header there
# cannot even be found: that is the compile-time guard that keeps it database-free.
src/core/%.o: src/core/%.cpp
	$(CXX) -std=c++17 -fPIC -O2 -g -Wall -Wextra $(if $(WERROR),-Werror,) -isystem $(EIGEN_INC) -Isrc/core -DPGML_CORE_SOURCE -c -o $@ $<

libpgml_core.a: $(CORE_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

# no LLVM bitcode for JIT inlining: it would need clang, and C++ gains nothing from it
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
# the rule for sql/pg_ml--0.3.0.sql below must not become the default goal
.DEFAULT_GOAL := all

sql/pg_ml--0.3.0.sql: sql/pg_ml--0.1.0.sql sql/pg_ml--0.1.0--0.2.0.sql sql/pg_ml--0.2.0--0.3.0.sql
	cat $^ > $@

MAJORVERSION_NUM := $(firstword $(subst ., ,$(MAJORVERSION)))
ifeq ($(filter $(MAJORVERSION_NUM),15 16 17),)
$(error pg_ml supports PostgreSQL 15 to 17, not $(MAJORVERSION))
endif

$(OBJS): $(wildcard src/core/*.hpp src/core/models/*.hpp src/pg/*.hpp)
