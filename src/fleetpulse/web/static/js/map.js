// The fleet map: Leaflet with clustered vehicle markers, geofences, a trip route and playback.

/* global L */

import { escapeHtml } from "./format.js";

// The simulator's default city centre, used until the first vehicles arrive.
const DEFAULT_CENTRE = [48.137, 11.575];
const DEFAULT_ZOOM = 12;
// Markers stop clustering from street level on, where single vehicles can be told apart.
const UNCLUSTER_ZOOM = 16;
const FOCUS_ZOOM = 16;
// Headings are drawn in 10° steps, so small wobbles do not rebuild the marker.
const HEADING_STEP_DEG = 10;
const MARKER_SIZE_PX = 22;
const MAX_ZOOM = 19;
// Width of the vehicle panel over the map, as set in dashboard.css, plus its margin.
const PANEL_WIDTH_PX = 390;

function headingStep(view) {
  if (view.heading_deg === null || view.heading_deg === undefined) return null;
  return (Math.round(view.heading_deg / HEADING_STEP_DEG) * HEADING_STEP_DEG) % 360;
}

function markerHtml(motion, status, heading) {
  const arrow = motion === "moving" && heading !== null
    ? `<div class="arrow" style="transform: rotate(${heading}deg)"></div>`
    : "";
  return `<div class="disc m-${motion} s-${status}">${arrow}</div>`;
}

function clusterIcon(cluster) {
  const children = cluster.getAllChildMarkers();
  const count = children.length;
  let hasAlert = false;
  let anyMoving = false;
  for (const marker of children) {
    hasAlert ||= marker.options.fleetStatus === "alert";
    anyMoving ||= marker.options.fleetMotion === "moving";
  }
  const size = count < 10 ? 30 : count < 100 ? 36 : 44;
  const tone = hasAlert ? " has-alert" : anyMoving ? "" : " stopped";
  return L.divIcon({
    html: `<span>${count}</span>`,
    className: `fleet-cluster${tone}`,
    iconSize: [size, size],
  });
}

/** The Leaflet map and every layer drawn on it. */
export class FleetMap {
  constructor(element, config, { onSelect }) {
    this.onSelect = onSelect;
    // Without a tile layer Leaflet has no zoom range, and clustering needs one.
    this.map = L.map(element, { preferCanvas: true, minZoom: 2, maxZoom: MAX_ZOOM });
    this.map.setView(DEFAULT_CENTRE, DEFAULT_ZOOM);
    this.map.attributionControl.setPrefix(false);
    if (config.tile_url) {
      L.tileLayer(config.tile_url, { attribution: config.tile_attribution, maxZoom: MAX_ZOOM }).addTo(this.map);
    }
    this.clusters = L.markerClusterGroup({
      showCoverageOnHover: false,
      maxClusterRadius: 50,
      disableClusteringAtZoom: UNCLUSTER_ZOOM,
      spiderfyOnMaxZoom: false,
      chunkedLoading: true,
      iconCreateFunction: clusterIcon,
    });
    this.map.addLayer(this.clusters);
    this.geofences = L.layerGroup().addTo(this.map);
    this.route = L.layerGroup().addTo(this.map);
    this.markers = new Map();
    this.selectedId = null;
    this.playbackMarker = null;
    this.fitted = false;
  }

  /** Draw the configured geofences: circles and polygons, labelled with their names. */
  drawGeofences(fences) {
    this.geofences.clearLayers();
    const style = { color: "#7c4dff", weight: 2, fillOpacity: 0.08, dashArray: "6 4" };
    for (const fence of fences) {
      const shape = fence.polygon
        ? L.polygon(fence.polygon, style)
        : L.circle([fence.lat, fence.lon], { ...style, radius: fence.radius_m });
      shape.bindTooltip(escapeHtml(fence.name || fence.id));
      shape.addTo(this.geofences);
    }
  }

  /** Add or move the markers of `views`; `fleet` decides the motion shown. */
  update(views, fleet, nowMs = Date.now()) {
    const added = [];
    const moved = [];
    const restyled = [];
    for (const view of views) {
      if (view.lat === null || view.lon === null) continue;
      const entry = this.markers.get(view.device_id);
      if (!entry) {
        const marker = this.createMarker(view, fleet.motionOf(view, nowMs));
        this.markers.set(view.device_id, marker);
        added.push(marker);
        continue;
      }
      const position = entry.getLatLng();
      if (position.lat !== view.lat || position.lng !== view.lon) moved.push([entry, view]);
      if (this.restyle(entry, view, fleet.motionOf(view, nowMs))) restyled.push(entry);
    }
    if (moved.length) {
      // Removing and re-adding in bulk re-clusters once, where setLatLng on each clustered
      // marker would re-cluster it alone.
      const markers = moved.map(([marker]) => marker);
      this.clusters.removeLayers(markers);
      for (const [marker, view] of moved) marker.setLatLng([view.lat, view.lon]);
      this.clusters.addLayers(markers);
    }
    if (added.length) this.clusters.addLayers(added);
    if (restyled.length) this.clusters.refreshClusters(restyled);
    if (!this.fitted && this.markers.size) this.fitFleet();
  }

  /** Re-evaluate every marker's motion, so vehicles that went silent turn offline. */
  refreshMotion(fleet, nowMs = Date.now()) {
    const restyled = [];
    for (const [deviceId, marker] of this.markers) {
      const view = fleet.vehicles.get(deviceId);
      if (view && this.restyle(marker, view, fleet.motionOf(view, nowMs))) restyled.push(marker);
    }
    if (restyled.length) this.clusters.refreshClusters(restyled);
  }

  createMarker(view, motion) {
    const marker = L.marker([view.lat, view.lon], { keyboard: false, title: view.device_id });
    marker.options.fleetId = view.device_id;
    marker.options.fleetStyle = "";
    this.restyle(marker, view, motion);
    marker.on("click", () => this.onSelect(view.device_id));
    return marker;
  }

  /** Rebuild a marker's icon if its motion, status or heading step changed. */
  restyle(marker, view, motion) {
    const heading = headingStep(view);
    const selected = marker.options.fleetId === this.selectedId;
    const style = `${motion}|${view.status}|${heading}|${selected}`;
    if (marker.options.fleetStyle === style) return false;
    marker.options.fleetStyle = style;
    marker.options.fleetMotion = motion;
    marker.options.fleetStatus = view.status;
    marker.setIcon(L.divIcon({
      html: markerHtml(motion, view.status, heading),
      className: `vehicle-marker${selected ? " selected" : ""}`,
      iconSize: [MARKER_SIZE_PX, MARKER_SIZE_PX],
    }));
    return true;
  }

  fitFleet() {
    const bounds = this.clusters.getBounds();
    if (bounds.isValid()) {
      this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 14 });
      this.fitted = true;
    }
  }

  /** Mark a vehicle as selected and bring it into view, out of its cluster. */
  focus(deviceId, fleet) {
    const previous = this.markers.get(this.selectedId);
    this.selectedId = deviceId;
    for (const marker of [previous, this.markers.get(deviceId)]) {
      const view = marker && fleet.vehicles.get(marker.options.fleetId);
      if (view) this.restyle(marker, view, fleet.motionOf(view));
    }
    const marker = this.markers.get(deviceId);
    if (!marker) return;
    this.map.setView(marker.getLatLng(), Math.max(this.map.getZoom(), FOCUS_ZOOM));
  }

  /** Draw a trip's route, fit the map to it, and place the playback marker at its start. */
  showRoute(points) {
    this.clearRoute();
    if (points.length < 2) return;
    const line = L.polyline(points, { color: "#1d4ed8", weight: 4, opacity: 0.8 });
    line.addTo(this.route);
    L.circleMarker(points[0], { radius: 6, color: "#1f9d55", fillOpacity: 1 }).addTo(this.route);
    L.circleMarker(points[points.length - 1], { radius: 6, color: "#d63b3b", fillOpacity: 1 })
      .addTo(this.route);
    // The vehicle panel covers the right of the map, so the route is fitted left of it.
    this.map.fitBounds(line.getBounds(), { paddingTopLeft: [40, 40], paddingBottomRight: [PANEL_WIDTH_PX + 40, 40] });
  }

  clearRoute() {
    this.route.clearLayers();
    this.playbackMarker = null;
  }

  /** Move the playback marker to a position of the route shown. */
  setPlayback(lat, lon, headingDeg) {
    const heading = headingDeg === null || headingDeg === undefined ? null : Math.round(headingDeg);
    const icon = L.divIcon({
      html: markerHtml("moving", "normal", heading),
      className: "vehicle-marker playback-marker",
      iconSize: [MARKER_SIZE_PX, MARKER_SIZE_PX],
    });
    if (!this.playbackMarker) {
      this.playbackMarker = L.marker([lat, lon], { icon, interactive: false, zIndexOffset: 1000 });
      this.playbackMarker.addTo(this.route);
    } else {
      this.playbackMarker.setLatLng([lat, lon]);
      this.playbackMarker.setIcon(icon);
    }
  }
}
