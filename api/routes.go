package api

// routes declares every route, one line per area. An area adds its own file with
// a xxxRoutes method that calls s.route for each of its routes, and one line here.
func (s *Server) routes() {
	s.systemRoutes()
	s.keyRoutes()
	s.registryRoutes()
	s.templateRoutes()
	s.assignRoutes()
	s.banditRoutes()
	s.exposureRoutes()
	s.eventRoutes()
	s.metricDefRoutes()
	s.resultRoutes()
	s.healthRoutes()
	s.privacyRoutes()
	s.shareRoutes()
	s.jobRoutes()
	s.journeyRoutes()
	s.unitRoutes()
	s.modelRoutes()
	s.quasiRoutes()
	s.segmentRoutes()
	s.quantileRoutes()
	s.geoRoutes()
	s.powerRoutes()
	s.consoleRoutes()
	s.consolePageRoutes()
}
