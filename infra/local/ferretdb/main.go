// Command ferretdb runs FerretDB v1 (SQLite backend) as a local MongoDB-protocol server.
//
// It is a wrapper rather than `go install .../cmd/ferretdb` because that binary panics on a missing
// version file. It also keeps an extra index on every collection table (see keepIDIndexes).
package main

import (
	"context"
	"database/sql"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // driver "sqlite"; already linked in by FerretDB
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", "data/ferretdb", "directory of the SQLite databases")
	flag.Parse()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatalf("cannot create data directory: %v", err)
	}
	// FerretDB logs every failed command at warn level (e.g. endSessions, which it lacks and every client
	// sends on close), which would flood the log: errors only for it, warnings for our own code.
	ferretLogger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    ferretLogger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dataDir + "/",
	})
	if err != nil {
		log.Fatalf("cannot start FerretDB: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go keepIDIndexes(ctx, *dataDir, logger)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatalf("FerretDB stopped: %v", err)
	}
}

// keepIDIndexes works around a FerretDB v1 SQLite full scan: updates and deletes filter on
// `_ferretdb_sjson->'$._id'`, but FerretDB's own unique index is on `_ferretdb_sjson->"_id"`, a different
// expression that SQLite's planner cannot use, so each update scanned the whole table (66 ms at 10k
// documents, 1.3 ms with this index). New collections appear at any time, hence the polling.
func keepIDIndexes(ctx context.Context, dir string, logger *slog.Logger) {
	open := map[string]*sql.DB{}
	defer func() {
		for _, db := range open {
			_ = db.Close()
		}
	}()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		indexAll(ctx, dir, open, logger)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func indexAll(ctx context.Context, dir string, open map[string]*sql.DB, logger *slog.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	seen := map[string]bool{}
	for _, path := range files {
		seen[path] = true
		db := open[path]
		if db == nil {
			// mode=rw: never create a file FerretDB has just deleted (it would look like a database).
			var err error
			db, err = sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(5000)")
			if err != nil {
				logger.Warn("id index: cannot open", "file", path, "error", err)
				continue
			}
			// No idle connection: one held across dropDatabase would keep the deleted file alive and
			// leave its -wal/-shm behind for a new database of the same name to pick up.
			db.SetMaxIdleConns(0)
			open[path] = db
		}
		indexFile(ctx, db, logger)
	}
	for path, db := range open {
		if !seen[path] {
			_ = db.Close()
			delete(open, path)
		}
	}
}

// indexFile creates the `_stvs_id` index on every collection table of one database that lacks it.
func indexFile(ctx context.Context, db *sql.DB, logger *slog.Logger) {
	rows, err := db.QueryContext(ctx, `SELECT t.name FROM sqlite_master t
		WHERE t.type = 'table' AND t.name NOT LIKE '\_ferretdb\_%' ESCAPE '\'
		AND NOT EXISTS (SELECT 1 FROM sqlite_master i WHERE i.type = 'index' AND i.name = t.name || '_stvs_id')`)
	if err != nil {
		warnUnlessRace(ctx, logger, err)
		return
	}
	var tables []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) == nil {
			tables = append(tables, name)
		}
	}
	_ = rows.Close()
	for _, t := range tables {
		q := `CREATE INDEX IF NOT EXISTS "` + t + `_stvs_id" ON "` + t + `" (_ferretdb_sjson->'$._id')`
		if _, err := db.ExecContext(ctx, q); err != nil {
			warnUnlessRace(ctx, logger, err)
		}
	}
}

// warnUnlessRace ignores the expected races with FerretDB dropping collections, databases, or shutting down.
func warnUnlessRace(ctx context.Context, logger *slog.Logger, err error) {
	msg := err.Error()
	if ctx.Err() != nil || strings.Contains(msg, "no such table") || strings.Contains(msg, "unable to open") {
		return
	}
	logger.Warn("id index: cannot create", "error", err)
}
