import Hummingbird

/// `GET /api/client/`: what the browser client needs before anyone logs in.
struct ClientController: Sendable {
    let tileURL: String
    /// `pickupRadius`: the client offers "picked up" only this close to the pick-up (0: anywhere).
    var pickupRadius: Double = 0

    private struct Settings: Encodable {
        let tileURL: String
        let pickupRadius: Double

        enum CodingKeys: String, CodingKey {
            case tileURL = "tile_url"
            case pickupRadius = "pickup_radius"
        }
    }

    func addRoutes(to router: Router<HubRequestContext>) {
        let settings = Settings(tileURL: tileURL, pickupRadius: pickupRadius)
        router.get("/api/client/") { _, _ in JSONResponse.make(settings) }
    }
}
