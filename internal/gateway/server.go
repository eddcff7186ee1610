package gateway

import (
	"log/slog"
	"net/http"
	"time"
)

// Server returns the http.Server to run g on addr: the config's header limit is enforced by
// net/http itself (431 before the handler runs), request headers must arrive within 10 s, and
// idle keep-alive connections are closed after 2 minutes. There is no write timeout: streams
// are bounded by Limits.UpstreamTimeoutSeconds instead.
func (g *Gateway) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           g,
		MaxHeaderBytes:    g.limits.MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}
