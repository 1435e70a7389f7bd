package api

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/ledger/pgstore"
)

var sourceToProto = map[string]eventsv1.PriceSource{
	pgstore.SourceDeploymentOverride: eventsv1.PriceSource_PRICE_SOURCE_DEPLOYMENT_OVERRIDE,
	pgstore.SourceCatalog:            eventsv1.PriceSource_PRICE_SOURCE_CATALOG,
	pgstore.SourceUnknown:            eventsv1.PriceSource_PRICE_SOURCE_UNKNOWN,
}

// EntryProto renders a ledger row as the wire Entry: the cost as it was
// recorded, with the usage fields the row keeps.
func EntryProto(e *pgstore.Entry) *ledgerv1.Entry {
	status := eventsv1.PricingStatus_PRICING_STATUS_PRICED
	if !e.Priced {
		status = eventsv1.PricingStatus_PRICING_STATUS_UNPRICED
	}
	cost := &eventsv1.CostComputed{
		EventId: e.EventID,
		Usage: &eventsv1.UsageRecorded{
			EventId: e.EventID,
			Identity: &eventsv1.Identity{
				KeyId: e.KeyID, TeamId: e.TeamID, UserId: e.UserID, OrgId: e.OrgID,
				EndUserId: e.EndUserID, Tags: e.Tags,
			},
			Route: &eventsv1.Route{
				ModelGroup: e.ModelGroup, DeploymentId: e.DeploymentID,
				Provider: e.Provider, BackendModel: e.BackendModel,
			},
			Tokens: &eventsv1.TokenCounts{
				Input: e.InputTokens, Output: e.OutputTokens, CacheRead: e.CacheReadTokens,
				CacheCreation: e.CacheCreationTokens, CacheCreation_1H: e.CacheCreation1hTokens,
				Reasoning: e.ReasoningTokens,
			},
			ReservationId: e.ReservationID,
			RequestId:     e.RequestID,
			OccurredAt:    timestamppb.New(e.OccurredAt),
		},
		TotalNanos:        e.TotalNanos,
		Status:            status,
		UnknownComponents: e.UnknownComponents,
		CatalogVersion:    e.CatalogVersion,
	}
	for _, c := range e.Components {
		cost.Components = append(cost.Components, &eventsv1.CostComponent{
			Name: c.Name, Tokens: c.Tokens, UnitPrice: c.UnitPrice, Source: sourceToProto[c.Source],
			SourceDetail: c.SourceDetail, ExactCost: c.ExactCost, CostNanos: c.CostNanos,
		})
	}
	return &ledgerv1.Entry{
		EventId:         e.EventID,
		Cost:            cost,
		RecordedAt:      recordedAt(e.RecordedAt),
		CorrectsEventId: e.CorrectsEventID,
	}
}
