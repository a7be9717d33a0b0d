import Foundation
import Hub
import Hummingbird
import Persistence

/// `GET /api/trip/`, `GET /api/trip/<uuid>/` and `GET /api/trip/<uuid>/track/`: live trips
/// from the hub, finished ones from the store, with the reference's visibility rules; a track
/// only to the trip's rider and driver. Operators see every trip and track, and list the live ones.
struct TripController: Sendable {
    let hub: Hub
    let store: any SnapshotStore
    let auth: Authenticator
    /// In a cluster: other nodes own live trips too, and lists read them as committed.
    let cluster: (any ClusterTrips)?

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/api/trip/") { request, _ in
            let user = try await auth.requireUser(request)
            let trips = try await visibleTrips(for: user).sorted { $0.created > $1.created }
            return JSONResponse.make(trips.map { TripJSON(view: hub.users.view(of: $0)) })
        }
        router.get("/api/trip/:trip_id/") { request, context in
            let user = try await auth.requireUser(request)
            guard let id = context.parameters.get("trip_id").flatMap(UUID.init(uuidString:)),
                let trip = try await trip(id: id), Self.isVisible(trip, to: user)
            else {
                throw APIError.notFound
            }
            return JSONResponse.make(TripJSON(view: hub.users.view(of: trip)))
        }
        router.get("/api/trip/:trip_id/track/") { request, context in
            let user = try await auth.requireUser(request)
            guard let id = context.parameters.get("trip_id").flatMap(UUID.init(uuidString:)),
                let trip = try await trip(id: id), trip.riderID == user.id || trip.driverID == user.id || user.group == .operator
            else {
                throw APIError.notFound
            }
            // A live trip's actor holds its whole track; a finished one's is in the store.
            let points = if let actor = hub.tripActor(id: id) { await actor.trackPoints } else { try await store.track(of: id) }
            return JSONResponse.make(TrackJSON(tripID: id, points: points))
        }
    }

    /// A rider sees its own trips; a driver sees every requested trip and its own; an operator
    /// sees every trip.
    static func isVisible(_ trip: Trip, to user: User) -> Bool {
        switch user.group {
        case .rider: trip.riderID == user.id
        case .driver: trip.status == .requested || trip.driverID == user.id
        case .operator: true
        }
    }

    /// Live trips are read before the store: a finished trip leaves memory only after the store
    /// holds it, so whichever read misses it, the other one sees it. In a cluster, the live trips
    /// other nodes own come from the store too, as committed (every trip change is committed
    /// there before it is acknowledged); this node's own live trips win over those rows.
    private func visibleTrips(for user: User) async throws -> [Trip] {
        if user.group == .operator { return hub.index.allTrips() }
        var live = hub.index.trips(involving: user.id)
        if user.group == .driver {
            live += hub.index.requestedTrips()
        }
        var trips: [UUID: Trip] = [:]
        for trip in try await store.finishedTrips(involving: user.id) { trips[trip.id] = trip }
        if let cluster {
            for trip in try await cluster.unfinishedTrips(involving: user.id, includingRequested: user.group == .driver) {
                trips[trip.id] = trip
            }
        }
        for trip in live { trips[trip.id] = trip }
        return trips.values.filter { Self.isVisible($0, to: user) }
    }

    private func trip(id: UUID) async throws -> Trip? {
        if let live = hub.index.trip(id: id) { return live }
        return try await store.trip(id: id)
    }
}
