// Package api serves the ledger's spend queries over Connect. Every figure is
// a sum of ledger entries read from Postgres, never a cached counter, so what a
// user sees in /key/info or /spend/logs is what the ledger can prove.
package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/gen/spendledger/ledger/v1/ledgerv1connect"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// Server implements ledgerv1connect.LedgerServiceHandler.
type Server struct {
	db  pgstore.DB
	now func() time.Time
}

var _ ledgerv1connect.LedgerServiceHandler = (*Server)(nil)

// New returns a Server reading from db.
func New(db pgstore.DB) *Server { return &Server{db: db, now: time.Now} }

// beginning is the start of an open range: before any entry can have occurred.
var beginning = time.Unix(0, 0).UTC()

// window reads a request's scope and range; an unset start is the beginning
// of time and an unset end is now.
func (s *Server) window(p interface {
	GetScope() *eventsv1.Scope
	GetRange() *ledgerv1.TimeRange
}) (scope.Scope, time.Time, time.Time, error) {
	sc, err := protoconv.Scope(p.GetScope())
	if err != nil {
		return scope.Scope{}, time.Time{}, time.Time{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	start, end, err := s.bounds(p.GetRange())
	return sc, start, end, err
}

func (s *Server) bounds(r *ledgerv1.TimeRange) (time.Time, time.Time, error) {
	start, end := beginning, s.now().UTC()
	if r.GetStart() != nil {
		if err := r.GetStart().CheckValid(); err != nil {
			return start, end, connect.NewError(connect.CodeInvalidArgument, errors.New("range.start is not a valid timestamp"))
		}
		start = r.GetStart().AsTime()
	}
	if r.GetEnd() != nil {
		if err := r.GetEnd().CheckValid(); err != nil {
			return start, end, connect.NewError(connect.CodeInvalidArgument, errors.New("range.end is not a valid timestamp"))
		}
		end = r.GetEnd().AsTime()
	}
	if end.Before(start) {
		return start, end, connect.NewError(connect.CodeInvalidArgument, errors.New("range.end is before range.start"))
	}
	return start, end, nil
}

// GetSpend implements LedgerServiceHandler.
func (s *Server) GetSpend(ctx context.Context, req *connect.Request[ledgerv1.GetSpendRequest]) (*connect.Response[ledgerv1.GetSpendResponse], error) {
	sc, start, end, err := s.window(req.Msg)
	if err != nil {
		return nil, err
	}
	sum, err := pgstore.Sum(ctx, s.db, sc, start, end)
	if err != nil {
		return nil, unavailable(err)
	}
	return connect.NewResponse(&ledgerv1.GetSpendResponse{
		SpentNanos: sum.Nanos, Entries: sum.Entries, UnpricedEntries: sum.Unpriced,
	}), nil
}

// SpendByModelGroup implements LedgerServiceHandler.
func (s *Server) SpendByModelGroup(ctx context.Context, req *connect.Request[ledgerv1.SpendByModelGroupRequest]) (*connect.Response[ledgerv1.SpendByModelGroupResponse], error) {
	sc, start, end, err := s.window(req.Msg)
	if err != nil {
		return nil, err
	}
	groups, err := pgstore.SpendByModelGroup(ctx, s.db, sc, start, end)
	if err != nil {
		return nil, unavailable(err)
	}
	out := &ledgerv1.SpendByModelGroupResponse{}
	for _, g := range groups {
		out.Rows = append(out.Rows, &ledgerv1.ModelGroupSpend{ModelGroup: g.ModelGroup, SpentNanos: g.Nanos, Requests: g.Entries})
	}
	return connect.NewResponse(out), nil
}

// SpendByDay implements LedgerServiceHandler.
func (s *Server) SpendByDay(ctx context.Context, req *connect.Request[ledgerv1.SpendByDayRequest]) (*connect.Response[ledgerv1.SpendByDayResponse], error) {
	sc, start, end, err := s.window(req.Msg)
	if err != nil {
		return nil, err
	}
	days, err := pgstore.SpendByDay(ctx, s.db, sc, start, end)
	if err != nil {
		return nil, unavailable(err)
	}
	out := &ledgerv1.SpendByDayResponse{}
	for _, d := range days {
		out.Rows = append(out.Rows, &ledgerv1.DaySpend{Day: d.Day.UTC().Format(time.DateOnly), SpentNanos: d.Nanos, Requests: d.Entries})
	}
	return connect.NewResponse(out), nil
}

// ListEntries implements LedgerServiceHandler.
func (s *Server) ListEntries(ctx context.Context, req *connect.Request[ledgerv1.ListEntriesRequest]) (*connect.Response[ledgerv1.ListEntriesResponse], error) {
	if req.Msg.GetKeyId() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("key_id is required"))
	}
	if req.Msg.GetPageSize() < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("page_size must not be negative"))
	}
	start, end, err := s.bounds(req.Msg.GetRange())
	if err != nil {
		return nil, err
	}
	page, err := pgstore.ListEntries(ctx, s.db, scope.Scope{Kind: scope.KindKey, ID: req.Msg.GetKeyId()},
		start, end, int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		if errors.Is(err, pgstore.ErrBadPageToken) {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		return nil, unavailable(err)
	}
	out := &ledgerv1.ListEntriesResponse{NextPageToken: page.NextPageToken}
	for i := range page.Entries {
		out.Entries = append(out.Entries, EntryProto(&page.Entries[i]))
	}
	return connect.NewResponse(out), nil
}

func unavailable(err error) error {
	return connect.NewError(connect.CodeUnavailable, err)
}

// recordedAt keeps the zero time out of the wire.
func recordedAt(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
