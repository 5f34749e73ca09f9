-- The demo catalogue. ON CONFLICT keeps it idempotent and leaves edited rows alone.
INSERT INTO products (sku, name, description, price_cents, stock, category) VALUES
	('TRAIL-JKT', 'Trailhead Rain Jacket', 'Waterproof, breathable shell with taped seams and a packable hood.', 12900, 40, 'Outerwear'),
	('ALPINE-FLC', 'Alpine Fleece Pullover', 'Warm 300-weight fleece with a half zip and a kangaroo pocket.', 6900, 60, 'Outerwear'),
	('SUMMIT-PACK', 'Summit 28 L Daypack', 'Light daypack with a hydration sleeve and a ventilated back panel.', 8900, 35, 'Packs'),
	('BASE-TEE', 'Merino Base Layer Tee', 'Soft, odour-resistant merino wool for long days on the trail.', 4900, 120, 'Clothing'),
	('RIDGE-BOOT', 'Ridge Hiking Boots', 'Mid-height leather boots with a grippy lugged sole.', 15900, 25, 'Footwear'),
	('CAMP-MUG', 'Enamel Camp Mug', 'Classic 350 ml enamel mug, at home by a fire or on your desk.', 1400, 200, 'Camp'),
	('HEAD-LAMP', 'Beacon Headlamp', '400-lumen rechargeable headlamp with a red night mode.', 3900, 80, 'Camp'),
	('TREK-POLES', 'Carbon Trekking Poles', 'A pair of collapsible carbon poles with cork grips.', 11900, 30, 'Gear'),
	('WOOL-SOCKS', 'Cushioned Hiking Socks', 'Three pairs of cushioned merino-blend socks.', 2400, 150, 'Clothing'),
	('TRAVEL-BOTTLE', 'Insulated Bottle 750 ml', 'Keeps drinks cold for 24 hours or hot for 12.', 2900, 90, 'Camp'),
	('SUN-CAP', 'Sun Shade Cap', 'Quick-dry cap with a removable neck cape.', 2200, 70, 'Clothing'),
	('MAP-CASE', 'Waterproof Map Case', 'Clear, roll-top case that keeps maps and phones dry.', 1800, 3, 'Gear')
ON CONFLICT (sku) DO NOTHING;
